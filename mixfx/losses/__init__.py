"""mixfx.losses."""
