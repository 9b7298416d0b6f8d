"""mixfx.data."""
