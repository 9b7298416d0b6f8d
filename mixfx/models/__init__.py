"""mixfx.models."""
