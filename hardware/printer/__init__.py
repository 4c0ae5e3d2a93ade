"""hardware/printer."""
