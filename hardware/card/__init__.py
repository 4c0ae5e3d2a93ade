"""hardware/card."""
