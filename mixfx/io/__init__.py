"""mixfx.io: everything that touches files (the bottom layer: it imports no models or effects).

Modules:
    atomic     :func:`atomic_write` / :func:`atomic_path` / :func:`atomic_dir`: temp file or folder,
               fsync, rename; honours the umask.
    audio      :func:`load_audio` → ``(channels, samples)`` at a requested rate, :func:`save_audio`, :func:`audio_info`.
    checkpoint this project's model checkpoints: :func:`save_model_checkpoint`, :func:`load_model_checkpoint`,
               :func:`torch_load` (``weights_only`` unless allowed).
    hashing    :func:`json_sha256`, :func:`file_sha256`: cache keys and provenance records.
    paths      :func:`check_output_dir`, :func:`check_output_file`: refuse bad outputs before any work.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "atomic": ("atomic_dir", "atomic_path", "atomic_write"), "audio": ("audio_info", "load_audio", "save_audio"),
    "checkpoint": ("ModelCheckpoint", "load_model_checkpoint", "save_model_checkpoint", "torch_load"),
    "hashing": ("file_sha256", "json_sha256"), "paths": ("check_output_dir", "check_output_file"),
})
