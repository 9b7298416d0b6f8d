"""Un-blind listening-test ratings and compute the paper's statistics (§3.4.2, Fig. 3).

Per question type — ``multitrack``, ``single_stem`` and, when several instruments are present,
``single_stem:<stem>`` — this gives the mean, median and 95 % CI per condition, the omnibus
tests (repeated-measures ANOVA with Greenhouse–Geisser correction, and Friedman), post-hoc
paired t-tests for every pair of conditions with Bonferroni correction and Cohen's d_z, and the
list of pairs with no significant difference. Units for pairing are participant × question
(``pair_by="question"``, the default) or participant means (``pair_by="participant"``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mixeval.errors import MixevalError
from mixeval.listening.results import ResultSet
from mixeval.metrics.stats import describe, friedman, pairwise_paired_tests, rm_anova
from mixfx import STEMS

logger = logging.getLogger(__name__)

__all__ = ["Analysis", "AnalysisOptions", "analyze_ratings", "normalize_scale", "screen_participants", "stem_order", "unblind"]

GROUP_TITLES = {"multitrack": "multitrack", "single_stem": "single stem"}


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of :func:`analyze_ratings`.

    Attributes:
        alpha: significance level for the Bonferroni-corrected p-values.
        confidence: level of the confidence intervals.
        pair_by: ``"question"`` (participant × question units) or ``"participant"``.
        scale: ``"auto"``, ``"1"`` (ratings in [0, 1]) or ``"100"`` (ratings in [0, 100]).
        screen_condition: condition used for post-screening (default: the hidden reference, if any).
        screen_threshold: a rating below this (on the 0–1 scale) counts as a miss.
        screen_max_fraction: flag participants who miss on more than this fraction of questions.
        exclude_flagged: drop flagged participants before the statistics.
        order: condition display order (default: manifest order).
    """

    alpha: float = 0.05
    confidence: float = 0.95
    pair_by: str = "question"
    scale: str = "auto"
    screen_condition: str | None = None
    screen_threshold: float = 0.9
    screen_max_fraction: float = 0.15
    exclude_flagged: bool = False
    order: tuple[str, ...] = ()

    def validate(self) -> "AnalysisOptions":
        if self.pair_by not in ("question", "participant"):
            raise MixevalError(f"pair_by {self.pair_by!r}: expected 'question' or 'participant'")
        if self.scale not in ("auto", "1", "100"):
            raise MixevalError(f"scale {self.scale!r}: expected 'auto', '1' or '100'")
        if not 0 < self.alpha < 1 or not 0 < self.confidence < 1:
            raise MixevalError(f"alpha and confidence must lie in (0, 1), got {self.alpha}, {self.confidence}")
        if not 0 <= self.screen_threshold <= 1 or not 0 <= self.screen_max_fraction <= 1:
            raise MixevalError("screen_threshold and screen_max_fraction must lie in [0, 1]")
        return self


@dataclass
class Analysis:
    """Everything :func:`analyze_ratings` found; tables are ready for :func:`mixeval.tables.render.write_table`."""

    ratings: pd.DataFrame
    descriptives: pd.DataFrame
    pairwise: pd.DataFrame
    omnibus: pd.DataFrame
    participants: pd.DataFrame
    conditions: list[str]
    labels: dict[str, str]
    groups: list[str]
    no_difference: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scale: float = 1.0


def unblind(result: ResultSet, manifest: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """Attach condition, question type, stem, song and role to every rating.

    With a manifest, element ids map to conditions (page ids must agree); ratings that already
    name a condition are matched through their page. Without one, the ratings must carry
    ``condition`` and ``question_type`` columns themselves (``stem`` defaults to ``mixture``).

    Raises:
        MixevalError: unknown element ids or conditions, pages that disagree with the manifest,
            or no way to un-blind.
    """
    df = result.ratings.copy()
    notes: list[str] = []
    has_element = df["element"].notna().all() and (df["element"].astype(str) != "").all()
    if manifest is None:
        missing = [c for c in ("condition", "question_type") if c not in df.columns or df[c].isna().any()]
        if missing:
            raise MixevalError(
                f"results name no {missing}; pass --manifest manifest.csv (written by make-listening-test) to un-blind them"
            )
        df["stem"] = df["stem"].fillna("mixture") if "stem" in df.columns else "mixture"
        df["condition_label"] = df.get("condition_label", df["condition"]).fillna(df["condition"])
        df["role"] = df.get("role", "stimulus")
        df["song"] = df.get("song", "")
        bad = sorted(set(df["question_type"]) - {"multitrack", "single_stem"})
        if bad:
            raise MixevalError(f"unknown question_type {bad}; allowed: ['multitrack', 'single_stem']")
        return df, notes
    cols = ["condition", "condition_label", "question_type", "stem", "song", "role"]
    if has_element:
        m = manifest.set_index("element_id")
        unknown = sorted(set(df["element"]) - set(m.index))
        if unknown:
            raise MixevalError(
                f"{len(unknown)} element id(s) in the results are not in the manifest, e.g. {unknown[:3]}; "
                "is it the manifest of this test?"
            )
        info = m.loc[df["element"], ["page_id"] + cols].reset_index(drop=True)
        clash = df["page"].to_numpy() != info["page_id"].to_numpy()
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            raise MixevalError(
                f"element {df['element'].iloc[i]!r} is on page {df['page'].iloc[i]!r} in the results but on "
                f"{info['page_id'].iloc[i]!r} in the manifest"
            )
        df = df.drop(columns=[c for c in cols if c in df.columns]).reset_index(drop=True)
        df = pd.concat([df, info[cols]], axis=1)
    else:
        pages = manifest.drop_duplicates("page_id").set_index("page_id")
        unknown = sorted(set(df["page"]) - set(pages.index))
        if unknown:
            raise MixevalError(f"page(s) {unknown[:3]} in the results are not in the manifest")
        known = set(manifest["condition"])
        bad = sorted(set(df["condition"]) - known)
        if bad:
            raise MixevalError(f"condition(s) {bad[:3]} in the results are not in the manifest ({sorted(known)})")
        labels = manifest.drop_duplicates("condition").set_index("condition")["condition_label"]
        for c in ("question_type", "stem", "song"):
            df[c] = pages.loc[df["page"], c].to_numpy()
        df["condition_label"] = labels.loc[df["condition"]].to_numpy()
        roles = manifest.drop_duplicates("condition").set_index("condition")["role"]
        df["role"] = roles.loc[df["condition"]].to_numpy()
    outside = df["role"] == "outside_reference"
    if outside.any():
        notes.append(f"{int(outside.sum())} rating(s) of outside references ignored")
        df = df[~outside].reset_index(drop=True)
    return df, notes


def normalize_scale(df: pd.DataFrame, scale: str = "auto") -> tuple[pd.DataFrame, float]:
    """Bring ratings to [0, 1]: ``auto`` takes [0, 1] when every rating fits, else [0, 100].

    ``auto`` refuses a file where ratings exceed 1 although most of them lie strictly between 0 and 1
    (a 0–1 test with a stray 0–100 value would otherwise be divided by 100 as a whole).

    Raises:
        MixevalError: a rating outside the chosen range (naming source, participant, page, element).
    """
    values = df["rating"].to_numpy(dtype=float)
    top = 1.0 if scale == "1" or (scale == "auto" and values.max() <= 1.0) else 100.0
    fractional = (values > 0) & (values < 1)
    if scale == "auto" and top == 100.0 and fractional.mean() > 0.5:
        # most ratings are fractions of 1, yet some exceed 1: two scales mixed, not a 0–100 test
        r = df[values > 1].iloc[0]
        raise MixevalError(
            f"{r.get('source', 'results')}: rating {r['rating']} (participant {r['participant']}, page {r['page']}) exceeds 1 "
            f"while {fractional.mean():.0%} of the ratings lie strictly between 0 and 1: mixed rating scales; fix the "
            f"file or pass --scale 1 or --scale 100"
        )
    bad = (values < 0) | (values > top)
    if bad.any():
        r = df[bad].iloc[0]
        allowed = "[0, 1] or [0, 100]" if scale == "auto" else f"[0, {top:g}]"
        raise MixevalError(
            f"{r.get('source', 'results')}: rating {r['rating']} (participant {r['participant']}, page {r['page']}, "
            f"element {r.get('element') if pd.notna(r.get('element')) else r.get('condition')}) outside {allowed}; "
            f"{int(bad.sum())} such rating(s)"
        )
    out = df.copy()
    out["rating"] = values / top
    return out, top


def screen_participants(df: pd.DataFrame, condition: str | None, threshold: float, max_fraction: float) -> pd.DataFrame:
    """Post-screening: flag participants rating ``condition`` below ``threshold`` on more than
    ``max_fraction`` of the questions where they rated it (cf. ITU-R BS.1534-3 §5.4).

    Returns:
        One row per participant: ``participant, n_pages, screen_n, screen_misses, flagged``.
    """
    pages = df.groupby("participant")["page"].nunique().rename("n_pages")
    out = pages.to_frame()
    if condition is None:
        out["screen_n"], out["screen_misses"], out["flagged"] = 0, 0, False
        return out.reset_index()
    sub = df[df["condition"] == condition]
    n = sub.groupby("participant")["page"].nunique()
    misses = sub[sub["rating"] < threshold].groupby("participant")["page"].nunique()
    out["screen_n"] = n.reindex(out.index).fillna(0).astype(int)
    out["screen_misses"] = misses.reindex(out.index).fillna(0).astype(int)
    frac = out["screen_misses"] / out["screen_n"].where(out["screen_n"] > 0)
    out["flagged"] = (frac > max_fraction).fillna(False)
    return out.reset_index()


def stem_order(stems) -> list[str]:
    """Instruments in the paper's order (drums, bass, other, vocals), any others after them alphabetically."""
    rank = {s: i for i, s in enumerate(STEMS)}
    return sorted(dict.fromkeys(stems), key=lambda s: (rank.get(s, len(STEMS)), str(s)))


def _groups(df: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    groups = []
    for qt in ("multitrack", "single_stem"):
        mask = df["question_type"] == qt
        if mask.any():
            groups.append((qt, mask))
    stems = stem_order(pd.unique(df.loc[df["question_type"] == "single_stem", "stem"]))
    if len(stems) > 1:
        for s in stems:
            groups.append((f"single_stem:{s}", (df["question_type"] == "single_stem") & (df["stem"] == s)))
    return groups


def _unit_table(sub: pd.DataFrame, conditions: list[str], pair_by: str) -> tuple[pd.DataFrame, int]:
    index = ["participant", "page"] if pair_by == "question" else ["participant"]
    counts = sub.groupby(index + ["condition"]).size()
    dup = int((counts > 1).sum())
    wide = sub.pivot_table(index=index, columns="condition", values="rating", aggfunc="mean")
    present = [c for c in conditions if c in wide.columns]
    return wide.reindex(columns=present), dup


def analyze_ratings(df: pd.DataFrame, options: AnalysisOptions = AnalysisOptions(), *, expected_pages=None) -> Analysis:
    """Statistics of un-blinded ratings on the 0–1 scale (see the module docstring).

    Args:
        df: output of :func:`unblind` after :func:`normalize_scale`.
        options: :class:`AnalysisOptions`.
        expected_pages: pages every participant should have rated (for missing-page notes).

    Raises:
        MixevalError: fewer than 2 conditions, or nothing left after screening.
    """
    options.validate()
    notes: list[str] = []
    df = df[df["role"] != "outside_reference"].reset_index(drop=True)
    order = list(options.order) or list(pd.unique(df["condition"]))
    unknown = [c for c in options.order if c not in set(df["condition"])]
    if unknown:
        raise MixevalError(f"--order names condition(s) {unknown} that have no ratings; present: {sorted(set(df['condition']))}")
    conditions = order + [c for c in pd.unique(df["condition"]) if c not in order]
    if len(conditions) < 2:
        raise MixevalError(f"need ratings of at least 2 conditions, got {conditions}")
    labels = dict(zip(df["condition"], df["condition_label"]))
    screen = options.screen_condition
    if screen is None:
        hidden = sorted(set(df.loc[df["role"] == "hidden_reference", "condition"]))
        screen = hidden[0] if hidden else None
    elif screen not in set(df["condition"]):
        raise MixevalError(f"screening condition {screen!r} has no ratings; conditions: {conditions}")
    participants = screen_participants(df, screen, options.screen_threshold, options.screen_max_fraction)
    pages = sorted(expected_pages) if expected_pages is not None else sorted(set(df["page"]))
    rated = df.groupby("participant")["page"].agg(lambda s: set(s))
    participants["missing_pages"] = [" ".join(p for p in pages if p not in rated[q]) for q in participants["participant"]]
    for _, row in participants[participants["missing_pages"] != ""].iterrows():
        notes.append(f"participant {row['participant']} has no ratings for page(s) {row['missing_pages']}; pairs there are dropped")
    flagged = participants.loc[participants["flagged"], "participant"].tolist()
    if screen is not None:
        notes.append(
            f"post-screening on {screen!r}: {len(flagged)} participant(s) rated it below {options.screen_threshold:g} on more than "
            f"{options.screen_max_fraction:.0%} of questions" + (f": {', '.join(flagged)}" if flagged else "")
        )
    if flagged and options.exclude_flagged:
        df = df[~df["participant"].isin(flagged)].reset_index(drop=True)
        notes.append(f"excluded {len(flagged)} flagged participant(s)")
        if df.empty:
            raise MixevalError("no ratings left after excluding flagged participants")
    desc_rows, pair_tables, omni_rows, no_diff, groups = [], [], [], [], []
    for name, mask in _groups(df):
        sub = df[mask]
        groups.append(name)
        for c in conditions:
            values = sub.loc[sub["condition"] == c, "rating"].to_numpy(dtype=float)
            if values.size:
                stats = describe(values, confidence=options.confidence)
                desc_rows.append({"group": name, "condition": c, "label": labels.get(c, c), **stats})
        wide, dup = _unit_table(sub, conditions, options.pair_by)
        if dup:
            notes.append(f"{name}: {dup} unit(s) rated a condition more than once (repeats); their ratings are averaged")
        pw = pairwise_paired_tests(wide, alpha=options.alpha, confidence=options.confidence)
        pw.insert(0, "group", name)
        pair_tables.append(pw)
        dropped = pw[pw["n_dropped"] > 0]
        for _, r in dropped.iterrows():
            notes.append(f"{name}: {r['a']} vs {r['b']}: {int(r['n_dropped'])} incomplete pair(s) dropped")
        complete = wide.dropna()
        anova = rm_anova(complete.to_numpy())
        chi2, p_f = friedman(complete.to_numpy())
        omni_rows.append({"group": name, "n_units": len(complete), "n_incomplete": len(wide) - len(complete), "k": wide.shape[1],
                          **{k: v for k, v in anova.to_dict().items() if k not in ("n", "k")}, "friedman_chi2": chi2, "friedman_p": p_f})
        for _, r in pw[~pw["significant"]].iterrows():
            no_diff.append(
                f"{GROUP_TITLES.get(name, name.replace('single_stem:', 'single stem, '))}: no significant difference between "
                f"{labels.get(r['a'], r['a'])} and {labels.get(r['b'], r['b'])} (Bonferroni p = {r['p_bonferroni']:.3g}, n = {r['n']})"
            )
    return Analysis(
        ratings=df,
        descriptives=pd.DataFrame(desc_rows),
        pairwise=pd.concat(pair_tables, ignore_index=True) if pair_tables else pd.DataFrame(),
        omnibus=pd.DataFrame(omni_rows),
        participants=participants,
        conditions=conditions,
        labels={c: labels.get(c, c) for c in conditions},
        groups=groups,
        no_difference=no_diff,
        notes=notes,
    )
