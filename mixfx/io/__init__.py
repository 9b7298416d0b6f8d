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

_EXPORTS = {
    "ModelCheckpoint": "mixfx.io.checkpoint",
    "atomic_dir": "mixfx.io.atomic",
    "atomic_path": "mixfx.io.atomic",
    "atomic_write": "mixfx.io.atomic",
    "audio_info": "mixfx.io.audio",
    "check_output_dir": "mixfx.io.paths",
    "check_output_file": "mixfx.io.paths",
    "file_sha256": "mixfx.io.hashing",
    "json_sha256": "mixfx.io.hashing",
    "load_audio": "mixfx.io.audio",
    "load_model_checkpoint": "mixfx.io.checkpoint",
    "save_audio": "mixfx.io.audio",
    "save_model_checkpoint": "mixfx.io.checkpoint",
    "torch_load": "mixfx.io.checkpoint",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
