"""mixeval.tables."""
