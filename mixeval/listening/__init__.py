"""mixeval.listening."""
