"""mixeval.pipelines."""
