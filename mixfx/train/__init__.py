"""mixfx.train."""
