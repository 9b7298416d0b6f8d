"""mixeval.plots."""
