"""pos/ui."""
