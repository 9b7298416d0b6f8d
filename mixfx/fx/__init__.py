"""mixfx.fx."""
