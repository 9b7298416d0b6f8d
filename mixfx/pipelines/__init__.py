"""mixfx.pipelines."""
