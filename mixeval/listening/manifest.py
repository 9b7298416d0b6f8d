"""The listening-test manifest: one row per WAET ``audioelement`` id, for un-blinding the results.

Written by ``mixeval make-listening-test`` as ``manifest.csv`` next to the test; read by
``mixeval analyze``. Only :data:`REQUIRED_COLUMNS` are needed to analyse, so a hand-written
manifest for a test built elsewhere works too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from mixeval.errors import MixevalError
from mixfx.io.atomic import atomic_write

__all__ = [
    "MANIFEST_COLUMNS",
    "QUESTION_TYPES",
    "REQUIRED_COLUMNS",
    "ROLES",
    "read_manifest",
    "write_manifest",
]

MANIFEST_COLUMNS = [
    "element_id",       # WAET audioelement id (document-wide unique)
    "page_id",          # WAET page id
    "question_type",    # multitrack | single_stem
    "stem",             # mixture | drums | bass | other | vocals
    "song",             # song (item) folder name
    "condition",        # system name from the spec, or input_track / reference_track
    "condition_label",  # display label (plots, tables); for outside references the label participants see
    "role",             # stimulus | hidden_reference | anchor | outside_reference
    "element_type",     # WAET type: normal | outside-reference
    "label",            # WAET label (outside references only)
    "file",             # media path relative to the test folder
    "processing",       # how the stimulus was produced
    "sources",          # source files (';'-separated)
    "segment_start_s",
    "duration_s",
    "sample_rate",
    "gain_db",          # gain applied for loudness matching
    "loudness_lufs",    # integrated loudness of the written file (BS.1770): the test's one level
    "true_peak_dbtp",   # 4x-oversampled true peak of the written file
    "peak_excess_db",   # dB this file would have exceeded the true-peak ceiling at the target (0: fits)
    "clipped_samples",  # samples at full scale after 16-bit conversion
]
REQUIRED_COLUMNS = ["element_id", "page_id", "question_type", "stem", "condition"]
QUESTION_TYPES = ("multitrack", "single_stem")
ROLES = ("stimulus", "hidden_reference", "anchor", "outside_reference")


def write_manifest(rows: Iterable[Mapping], path: str | os.PathLike) -> Path:
    """Write manifest rows (dicts with :data:`MANIFEST_COLUMNS`) as CSV, atomically."""
    path = Path(path)
    df = pd.DataFrame(list(rows)).reindex(columns=MANIFEST_COLUMNS)
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        df.to_csv(f, index=False, lineterminator="\n")
    return path


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a manifest CSV.

    Missing optional columns are filled: ``role`` = ``stimulus``, ``condition_label`` =
    ``condition``, ``song`` = empty.

    Raises:
        MixevalError: file missing or unreadable, required columns missing, empty cells in
            required columns, duplicate element ids, or an unknown question type / role.
    """
    path = Path(path)
    if not path.is_file():
        raise MixevalError(f"{path}: manifest not found (written by make-listening-test as manifest.csv)")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise MixevalError(f"{path}: manifest is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise MixevalError(f"{path}: cannot parse manifest CSV ({str(err).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise MixevalError(f"{path}: manifest lacks column(s) {missing}; required: {REQUIRED_COLUMNS}")
    if df.empty:
        raise MixevalError(f"{path}: manifest has no rows")
    for c in REQUIRED_COLUMNS:
        df[c] = df[c].str.strip()
        empty = df.index[df[c] == ""]
        if len(empty):
            raise MixevalError(f"{path}: row {empty[0] + 2}: empty {c!r}")
    dup = df["element_id"][df["element_id"].duplicated()]
    if len(dup):
        raise MixevalError(f"{path}: duplicate element id {dup.iloc[0]!r}")
    bad = sorted(set(df["question_type"]) - set(QUESTION_TYPES))
    if bad:
        raise MixevalError(f"{path}: unknown question_type {bad}; allowed: {list(QUESTION_TYPES)}")
    if "role" not in df.columns:
        df["role"] = "stimulus"
    df["role"] = df["role"].replace("", "stimulus")
    bad = sorted(set(df["role"]) - set(ROLES))
    if bad:
        raise MixevalError(f"{path}: unknown role {bad}; allowed: {list(ROLES)}")
    if "condition_label" not in df.columns:
        df["condition_label"] = df["condition"]
    df["condition_label"] = df["condition_label"].where(df["condition_label"] != "", df["condition"])
    if "song" not in df.columns:
        df["song"] = ""
    return df
