"""File input/output: audio, atomic writes, checkpoints."""
