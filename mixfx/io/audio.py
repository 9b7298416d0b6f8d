"""Audio files on soundfile: stereo float32 tensors at the project's sample rate.

Loading checks what a user can get wrong and says it in one line naming the file:
unreadable or corrupt, empty, NaN/Inf, too short, silent (when asked), more than two
channels. Mono is upmixed and other sample rates are resampled, each with a log line.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.io.atomic import atomic_path

logger = logging.getLogger(__name__)

# file suffixes read as audio: what this libsndfile decodes (MP3 needs libsndfile >= 1.1). MP3 frames
# carry encoder delay, so MP3 stems may be offset by some milliseconds from each other.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg") + ((".mp3",) if "MP3" in sf.available_formats() else ()) + (".aiff", ".aif")
AUDIO_SUFFIX_TEXT = "/".join(AUDIO_SUFFIXES)  # for messages: ".wav/.flac/.ogg/.mp3/.aiff/.aif"


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return ``(frames, sample_rate, channels)`` of an audio file without decoding it.

    Raises:
        MixfxError: the file is missing or cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise MixfxError(f"{path}: file not found")
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types for corrupt headers
        raise MixfxError(f"{path}: cannot read audio ({_short(err)})") from None
    missing = _wav_missing_bytes(path)
    if missing:
        raise MixfxError(f"{path}: truncated WAV file (its header declares {missing} more bytes of audio than the file holds)")
    return int(info.frames), int(info.samplerate), int(info.channels)


def _wav_missing_bytes(path: Path) -> int:
    """For a RIFF/WAVE file, how many bytes of its ``data`` chunk are missing (0: complete or not a WAV).

    libsndfile silently shortens a truncated WAV to the frames present, so a cut-off download
    would otherwise load as a few milliseconds of audio.
    """
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            offset = 12
            while offset + 8 <= size:
                f.seek(offset)
                chunk, length = struct.unpack("<4sI", f.read(8))
                if chunk == b"data":
                    if length == 0xFFFFFFFF:  # streamed / unknown length
                        return 0
                    return max(0, offset + 8 + length - size)
                offset += 8 + length + (length & 1)
    except OSError:
        return 0
    return 0


def is_digital_silence(path: str | os.PathLike, *, block_frames: int = 1 << 16) -> bool:
    """True when every sample of an audio file is exactly zero (read block by block, stopping at the first sound).

    A file with sound near its start costs one block to check, so every stem of a dataset can be
    checked before a run starts.

    Raises:
        MixfxError: the file is missing, corrupt or truncated (see :func:`audio_info`).
    """
    path = Path(path)
    audio_info(path)
    try:
        for block in sf.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True):
            if np.any(block):
                return False
    except Exception as err:
        raise MixfxError(f"{path}: cannot decode audio ({_short(err)})") from None
    return True


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int = SAMPLE_RATE,
    min_seconds: float = 0.0,
    allow_silent: bool = True,
    start: int = 0,
    frames: int = -1,
) -> torch.Tensor:
    """Load an audio file as a stereo float32 tensor at ``sample_rate``.

    Args:
        path: audio file (any format libsndfile reads: WAV, FLAC, OGG, MP3, AIFF).
        sample_rate: rate to return; a file at another rate is resampled (polyphase) and a log
            line says so.
        min_seconds: raise when the (resampled) audio is shorter than this.
        allow_silent: when False, an all-zero file raises.
        start, frames: read only ``frames`` frames from ``start`` (in the file's own rate).

    Returns:
        Tensor of shape ``(2, samples)``, float32.

    Raises:
        MixfxError: missing, corrupt or empty file, NaN/Inf samples, more than 2 channels,
            too short, or silent when ``allow_silent`` is False.
    """
    path = Path(path)
    _, file_rate, _ = audio_info(path)
    try:
        data, file_rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as err:
        raise MixfxError(f"{path}: cannot decode audio ({_short(err)})") from None
    if data.shape[0] == 0:
        raise MixfxError(f"{path}: file holds no audio samples")
    if not np.isfinite(data).all():
        raise MixfxError(f"{path}: audio contains NaN or Inf samples")
    channels = data.shape[1]
    if channels == 1:
        logger.info("%s: mono file, upmixed to stereo", path)
        data = np.repeat(data, 2, axis=1)
    elif channels != 2:
        raise MixfxError(f"{path}: expected 1 or 2 channels, got {channels}")
    if file_rate != sample_rate:
        logger.info("%s: resampling %d Hz -> %d Hz", path, file_rate, sample_rate)
        data = resample(data.T, file_rate, sample_rate).T
    seconds = data.shape[0] / sample_rate
    if seconds < min_seconds:
        raise MixfxError(f"{path}: too short ({seconds:.2f} s, need at least {min_seconds:.2f} s)")
    if not allow_silent and not np.any(data):
        raise MixfxError(f"{path}: audio is silent (all samples are zero)")
    return torch.from_numpy(np.ascontiguousarray(data.T, dtype=np.float32))


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy ``resample_poly``, Kaiser window)."""
    if orig_rate == new_rate:
        return x
    g = math.gcd(int(orig_rate), int(new_rate))
    y = resample_poly(x, new_rate // g, orig_rate // g, axis=-1)
    return y.astype(np.float32, copy=False)


def save_audio(
    path: str | os.PathLike,
    audio: torch.Tensor | np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    subtype: str = "FLOAT",
) -> Path:
    """Write ``(channels, samples)`` audio atomically (temp file, then rename).

    Args:
        path: destination; the format follows the suffix (``.wav``, ``.flac``).
        audio: tensor or array of shape ``(channels, samples)``.
        sample_rate: sample rate to store.
        subtype: soundfile subtype, e.g. ``"FLOAT"`` or ``"PCM_16"`` (PCM clips at ±1).

    Raises:
        MixfxError: wrong shape or non-finite samples.
    """
    path = Path(path)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] > 8:
        raise MixfxError(f"{path}: expected audio of shape (channels, samples), got {tuple(audio.shape)}")
    if not np.isfinite(audio).all():
        raise MixfxError(f"{path}: refusing to write audio with NaN or Inf samples")
    if subtype.startswith("PCM"):
        audio = np.clip(audio, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio.T, sample_rate, subtype=subtype)
    return path


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
