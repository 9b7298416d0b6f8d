"""mixeval.metrics."""
