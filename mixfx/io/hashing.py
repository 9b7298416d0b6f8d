"""SHA-256 fingerprints used as cache keys and provenance records (mixfx and mixeval share them).

* :func:`json_sha256` — of a JSON-able value, canonicalised: ``json.dumps(obj, sort_keys=True,
  default=str)`` encoded as UTF-8, so equal dicts give equal keys whatever their insertion order;
* :func:`file_sha256` — of a file's bytes, read in chunks.

Both return the 64-character lowercase hex digest. Changing either changes every cache key.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

__all__ = ["file_sha256", "json_sha256"]


def json_sha256(obj: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``obj`` (sorted keys; non-JSON values as ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 hex digest of the bytes of the file at ``path`` (read ``chunk`` bytes at a time).

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
