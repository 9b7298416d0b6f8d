"""Read listening-test results into one long table.

Three input forms, detected by :func:`load_results`:

* a WAET ``saves/`` folder of result XMLs (or one result file): only sessions with
  ``waetresult@state="complete"`` and pages with ``state="complete"`` count; the rest is skipped
  and reported. With ``include_partial``, sessions saved with ``state="update"`` (the tab was
  closed before the end, e.g. before the final survey) also count, with their complete pages;
  :data:`PARTIAL_STATES`;
* the CSVs written by WAET's ``python/score_parser.py``: ``<page>-<axis>-ratings.csv`` with header
  ``file_keys,<element ids…>`` and one row per session (the folder or its ``ratings/`` subfolder);
* a long-format CSV with columns participant, page, element (or condition), rating[, axis].

Every reader returns a :class:`ResultSet` whose ``ratings`` DataFrame has the columns
:data:`RATING_COLUMNS` (``element`` or ``condition`` may be empty, not both).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mixeval.errors import MixevalError
from mixeval.listening.xmlsafe import parse_xml_file

logger = logging.getLogger(__name__)

__all__ = [
    "PARTIAL_STATES",
    "RATING_COLUMNS",
    "RatingValueError",
    "ResultSet",
    "load_results",
    "parse_waet_result",
    "read_long_csv",
    "read_score_parser_csvs",
    "read_waet_saves",
]

RATING_COLUMNS = ["participant", "page", "element", "condition", "axis", "rating", "source"]
_REPEAT = re.compile(r"-repeat-\d+$")
_LONG_ALIASES = {
    "participant": ("participant", "subject", "listener", "session", "file_keys"),
    "page": ("page", "question", "trial"),
    "element": ("element", "element_id", "ref", "stimulus"),
    "condition": ("condition", "system", "method"),
    "rating": ("rating", "value", "score"),
    "axis": ("axis",),
}


PARTIAL_STATES = ("update",)  # WAET's intermediate save after each page; "complete" after the final survey


@dataclass
class ResultSet:
    """Ratings in long format plus what was skipped on the way.

    Attributes:
        ratings: DataFrame with :data:`RATING_COLUMNS`; ``rating`` is float.
        kind: ``"waet"``, ``"score_parser"`` or ``"long_csv"``.
        sessions: one row per counted session (participant, file, code, experience_years).
        skipped: ``(file or page, reason)`` for every session or page not counted.
        notes: further remarks for the report.
    """

    ratings: pd.DataFrame
    kind: str
    sessions: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RatingValueError(MixevalError):
    """A rating cell that is not a finite number (always fatal, never skipped)."""


def _float(text: str | None, where: str) -> float:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        raise RatingValueError(f"{where}: rating {text!r} is not a number") from None
    if not np.isfinite(value):
        raise RatingValueError(f"{where}: rating {text!r} is not finite")
    return value


def parse_waet_result(
    path: str | os.PathLike, *, axis: str | None = None, include_partial: bool = False
) -> tuple[list[dict], dict, list[tuple[str, str]]]:
    """Parse one WAET result file.

    Args:
        path: a ``<waetresult>`` XML file.
        axis: keep only ``<value interface-name=axis>``; None keeps every axis.
        include_partial: also read the complete pages of a session in a :data:`PARTIAL_STATES`
            state (saved, but not finished).

    Returns:
        ``(rows, session, skipped)``: rating rows (dicts with :data:`RATING_COLUMNS` plus
        ``element_type``, ``presented_id``, ``listen_time_s``), a session dict (``participant``
        = the session key, ``state``, ``code`` and ``experience_years`` from the pre-test survey),
        and skipped pages as ``(where, reason)``. An incomplete session gives no rows (unless
        ``include_partial`` and its state is partial).

    Raises:
        MixevalError: not XML, unsafe XML, not a ``<waetresult>``, or a non-numeric rating.
    """
    path = Path(path)
    root = parse_xml_file(path)
    if root.tag != "waetresult":
        raise MixevalError(f"{path}: not a WAET result file (root element <{root.tag}>, expected <waetresult>)")
    key = root.get("key") or path.stem
    state = root.get("state")
    session = {"participant": key, "file": str(path), "state": state, "code": None, "experience_years": np.nan}
    for result in root.findall("survey/surveyresult"):
        response = result.findtext("response")
        ref = (result.get("ref") or "").lower()
        if ref == "participant" and response:
            session["code"] = response.strip()
        elif ref == "experience" and response:
            try:
                session["experience_years"] = float(response)
            except ValueError:
                pass
    if state != "complete" and not (include_partial and state in PARTIAL_STATES):
        return [], session, []
    rows: list[dict] = []
    skipped: list[tuple[str, str]] = []
    for page in root.findall("page"):
        ref = page.get("ref", "")
        page_id = _REPEAT.sub("", ref)
        if page.get("state") != "complete":
            skipped.append((f"{path.name}:{ref}", f"page state={page.get('state')!r}, not 'complete'"))
            continue
        for element in page.findall("audioelement"):
            etype = element.get("type", "normal")
            if etype == "outside-reference":
                continue
            listen = element.find("metric/metricresult[@name='enableElementTimer']")
            values = element.findall("value")
            if not values:
                skipped.append((f"{path.name}:{ref}:{element.get('ref')}", "rated element without <value>"))
                continue
            for value in values:
                name = value.get("interface-name", "default")
                if axis is not None and name != axis:
                    continue
                where = f"{path}: page {ref!r} element {element.get('ref')!r}"
                rows.append(
                    {
                        "participant": key,
                        "page": page_id,
                        "element": element.get("ref"),
                        "condition": None,
                        "axis": name,
                        "rating": _float(value.text, where),
                        "source": str(path),
                        "element_type": etype,
                        "presented_id": element.get("presentedId"),
                        "listen_time_s": float(listen.text) if listen is not None and listen.text else np.nan,
                    }
                )
    return rows, session, skipped


def read_waet_saves(path: str | os.PathLike, *, axis: str | None = None, include_partial: bool = False) -> ResultSet:
    """Read a WAET ``saves/`` folder (every ``*.xml``) or a single result file.

    Files that are not complete sessions are skipped with a reason (stub without state,
    ``state="update"`` for an abandoned session, unreadable XML, not a result file). With
    ``include_partial``, ``state="update"`` sessions are kept with their complete pages, and
    a note names them.

    Raises:
        MixevalError: no XML files, or no complete session at all.
    """
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        raise MixevalError(f"{path}: folder holds no WAET result files (*.xml)")
    rows: list[dict] = []
    sessions: list[dict] = []
    skipped: list[tuple[str, str]] = []
    partials: list[str] = []
    for file in files:
        try:
            file_rows, session, page_skips = parse_waet_result(file, axis=axis, include_partial=include_partial)
        except RatingValueError:
            raise
        except MixevalError as err:
            skipped.append((file.name, str(err).split(": ", 1)[-1]))
            continue
        partial = include_partial and session["state"] in PARTIAL_STATES
        if session["state"] != "complete" and not partial:
            reason = "stub without state (key requested, nothing saved)" if session["state"] is None else (
                f"state={session['state']!r} (session not finished{'' if include_partial else '; --include-partial keeps its complete pages'})"
            )
            skipped.append((file.name, reason))
            continue
        if partial:
            pages = len({r["page"] for r in file_rows})
            partials.append(f"{file.name} ({session['participant']}: {pages} complete page(s))")
        sessions.append(session)
        rows.extend(file_rows)
        skipped.extend(page_skips)
    if not sessions:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped[:5])
        raise MixevalError(f"{path}: no complete WAET sessions among {len(files)} file(s) ({reasons})")
    if not rows:
        raise MixevalError(f"{path}: complete sessions hold no ratings" + (f" on axis {axis!r}" if axis else ""))
    notes = []
    if partials:
        notes.append(f"--include-partial: kept {len(partials)} unfinished session(s) (state='update', closed before the end) "
                     f"with their complete pages: {', '.join(partials)}")
    ratings = pd.DataFrame(rows)
    return ResultSet(ratings=ratings, kind="waet", sessions=pd.DataFrame(sessions), skipped=skipped, notes=notes)


def _ratings_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(path.glob("*-ratings.csv"))
    if not files and (path / "ratings").is_dir():
        files = sorted((path / "ratings").glob("*-ratings.csv"))
    return files


def read_score_parser_csvs(path: str | os.PathLike) -> ResultSet:
    """Read WAET ``score_parser.py`` output: ``<page>-<axis>-ratings.csv`` files.

    The page and axis come from the file name (split at the last ``-``); the header is
    ``file_keys,<element ids…>``; empty cells are missing ratings.

    Raises:
        MixevalError: no such files, a file without ``file_keys`` column, or a non-numeric cell.
    """
    path = Path(path)
    files = _ratings_files(path)
    if not files:
        raise MixevalError(f"{path}: no score_parser CSVs (*-ratings.csv) found")
    rows = []
    for file in files:
        stem = file.name[: -len("-ratings.csv")]
        page, sep, axis = stem.rpartition("-")
        if not sep or not page:
            raise MixevalError(f"{file}: file name must be <page>-<axis>-ratings.csv")
        df = _read_csv(file)
        if "file_keys" not in df.columns:
            raise MixevalError(f"{file}: missing column 'file_keys' (score_parser header is file_keys,<element ids>)")
        for _, rec in df.iterrows():
            for col in df.columns:
                if col == "file_keys" or _blank(rec[col]):
                    continue
                rows.append(
                    {
                        "participant": str(rec["file_keys"]),
                        "page": _REPEAT.sub("", page),
                        "element": col,
                        "condition": None,
                        "axis": axis,
                        "rating": _float(rec[col], f"{file}: row {rec['file_keys']!r} column {col!r}"),
                        "source": str(file),
                    }
                )
    if not rows:
        raise MixevalError(f"{path}: score_parser CSVs hold no ratings")
    ratings = pd.DataFrame(rows, columns=RATING_COLUMNS)
    sessions = pd.DataFrame({"participant": sorted(ratings["participant"].unique())})
    return ResultSet(ratings=ratings, kind="score_parser", sessions=sessions)


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def _read_csv(file: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise MixevalError(f"{file}: CSV file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise MixevalError(f"{file}: cannot parse CSV ({str(err).splitlines()[0]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_long_csv(path: str | os.PathLike) -> ResultSet:
    """Read a long-format CSV: one rating per row.

    Columns (case-insensitive, aliases in parentheses): participant (subject, listener,
    session), page (question, trial), element (element_id, ref) and/or condition (system),
    rating (value, score), optional axis. Extra columns are kept (e.g. ``question_type``,
    ``stem``, ``song``) so a CSV can carry its own un-blinding.

    Raises:
        MixevalError: missing columns, empty file, empty ids, or non-numeric ratings.
    """
    path = Path(path)
    df = _read_csv(path)
    lower = {c.lower(): c for c in df.columns}
    found = {}
    for canonical, aliases in _LONG_ALIASES.items():
        for alias in aliases:
            if alias in lower:
                found[canonical] = lower[alias]
                break
    missing = [c for c in ("participant", "page", "rating") if c not in found]
    if "element" not in found and "condition" not in found:
        missing.append("element or condition")
    if missing:
        raise MixevalError(
            f"{path}: missing column(s) {missing} (have {list(df.columns)}); a long-format CSV needs "
            "participant, page, element or condition, rating"
        )
    if df.empty:
        raise MixevalError(f"{path}: CSV has a header but no rows")
    out = pd.DataFrame({c: df[found[c]].astype(str).str.strip() for c in found if c != "rating"})
    for c in ("element", "condition"):
        if c not in out:
            out[c] = None
    out["axis"] = out["axis"] if "axis" in out else "default"
    ratings = []
    for i, text in enumerate(df[found["rating"]].tolist()):
        if _blank(text):
            ratings.append(np.nan)
            continue
        ratings.append(_float(text, f"{path}: row {i + 2}"))
    out["rating"] = ratings
    out["source"] = str(path)
    for c in ("participant", "page"):
        if (out[c] == "").any():
            row = int(np.flatnonzero((out[c] == "").to_numpy())[0]) + 2
            raise MixevalError(f"{path}: row {row}: empty {c}")
    dropped = int(out["rating"].isna().sum())
    notes = [f"{path.name}: {dropped} row(s) without a rating ignored"] if dropped else []
    out = out[out["rating"].notna()]
    extra = [c for c in df.columns if c not in found.values()]
    for c in extra:
        out[c.lower()] = df.loc[out.index, c].astype(str).str.strip()
    cols = RATING_COLUMNS + [c.lower() for c in extra if c.lower() not in RATING_COLUMNS]
    out = out.reindex(columns=cols).reset_index(drop=True)
    sessions = pd.DataFrame({"participant": sorted(out["participant"].unique())})
    return ResultSet(ratings=out, kind="long_csv", sessions=sessions, notes=notes)


def load_results(path: str | os.PathLike, *, axis: str | None = None, include_partial: bool = False) -> ResultSet:
    """Detect the results form at ``path`` and read it (see the module docstring).

    After reading, a single rating axis is chosen: ``axis`` if given, else the only one present.
    ``include_partial`` applies to WAET saves (see :func:`read_waet_saves`).

    Raises:
        MixevalError: the path is missing, an empty folder, of unknown type, or holds several
            axes and ``axis`` is not given (or not present).
    """
    path = Path(path)
    if not path.exists():
        raise MixevalError(f"{path}: results path not found")
    if path.is_dir():
        if any(path.glob("*.xml")):
            result = read_waet_saves(path, axis=axis, include_partial=include_partial)
        elif _ratings_files(path):
            result = read_score_parser_csvs(path)
        else:
            csvs = sorted(path.glob("*.csv"))
            if len(csvs) == 1:
                result = read_long_csv(csvs[0])
            elif csvs:
                raise MixevalError(
                    f"{path}: {len(csvs)} CSV files but none named <page>-<axis>-ratings.csv; pass the long-format CSV file itself"
                )
            else:
                raise MixevalError(f"{path}: folder holds no results (*.xml WAET saves, *-ratings.csv, or a long-format *.csv)")
    elif path.suffix.lower() == ".xml":
        result = read_waet_saves(path, axis=axis, include_partial=include_partial)
    elif path.name.endswith("-ratings.csv"):
        result = read_score_parser_csvs(path)
    elif path.suffix.lower() == ".csv":
        result = read_long_csv(path)
    else:
        raise MixevalError(f"{path}: unknown results file type; expected a WAET .xml, a *-ratings.csv or a long .csv")
    axes = sorted(result.ratings["axis"].dropna().unique())
    if axis is not None:
        if axis not in axes:
            raise MixevalError(f"{path}: no ratings on axis {axis!r}; axes present: {axes}")
        result.ratings = result.ratings[result.ratings["axis"] == axis].reset_index(drop=True)
    elif len(axes) > 1:
        raise MixevalError(f"{path}: ratings on several axes {axes}; choose one with --axis")
    return result
