"""FX-normalization feature files (``mixfx.fxnorm.targets``): the official values, our ``.npz``
round trip, one-line errors for bad files, and the restricted unpickler.

The measuring and matching steps and the dataset pipeline are tested in ``test_normalize.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from conftest import SHARED
from mixfx.errors import MixfxError
from mixfx.fxnorm.targets import FXNormFeatures, load_features, smooth_eq

STEMS = ("drums", "bass", "other", "vocals")
OFFICIAL = SHARED / "data" / "official_fxfeatures" / "musdb18_fxfeatures_eqcompimagegain.npy"


def needs(path: Path) -> Path:
    """``path``, or skip the test when the shared file is absent."""
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


# --------------------------------------------------------------------------------------- features file


def test_official_features_file_values():
    f = load_features(needs(OFFICIAL))
    expected = {  # official_code_notes.md §5.3
        "vocals": ((-14.244, 1.363), 0.9178, -25.365),
        "drums": ((-13.531, 1.130), 0.9447, -28.967),
        "bass": ((-13.171, 0.874), 0.9816, -24.374),
        "other": ((-14.768, 1.297), 0.7943, -26.164),
    }
    assert f.stems == ("vocals", "drums", "bass", "other")
    for stem, (comp, imager, loud) in expected.items():
        assert np.allclose(f.compression[stem], comp, atol=1e-3)
        assert f.imager[stem] == pytest.approx(imager, abs=1e-4)
        assert f.loudness[stem] == pytest.approx(loud, abs=1e-3)
        assert f.panning[stem] == 0.5 and f.eq[stem].shape == (32769,)
    raw = load_features(OFFICIAL, smooth=False)
    for stem in STEMS:  # load-time Savitzky-Golay pass: small change (notes: median 0.1-0.7 %)
        window = 401 if stem in ("other", "vocals") else 151
        assert np.allclose(f.eq[stem], scipy.signal.savgol_filter(raw.eq[stem], window, 1, mode="mirror"))
        assert 1e-4 < np.median(np.abs(f.eq[stem] / raw.eq[stem] - 1)) < 0.01


def test_npz_round_trip(tmp_path):
    g = np.random.default_rng(0)
    f = FXNormFeatures(
        eq={s: g.uniform(0.1, 2, 32769) for s in STEMS}, compression={s: (-13.0, 1.0) for s in STEMS},
        imager={s: 0.9 for s in STEMS}, panning={s: 0.5 for s in STEMS}, loudness={s: -25.0 for s in STEMS})
    f.save(tmp_path / "f.npz")
    back = load_features(tmp_path / "f.npz", smooth=False)
    assert back.stems == f.stems and back.compression == f.compression and back.loudness == f.loudness
    assert all(np.allclose(back.eq[s], f.eq[s], rtol=1e-6) for s in STEMS)
    smoothed = load_features(tmp_path / "f.npz")
    assert np.allclose(smoothed.eq["bass"], smooth_eq(back.eq["bass"], "bass"))
    with pytest.raises(TypeError):
        f.imager["bass"] = 0.1  # read-only tables


def test_bad_feature_files_raise_one_line_errors(tmp_path):
    cases = {"missing": tmp_path / "nope.npz"}
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    cases["corrupt npy"] = tmp_path / "garbage.npy"
    (tmp_path / "text.npz").write_text("hello")
    cases["not a features file"] = tmp_path / "text.npz"
    if OFFICIAL.exists():
        (tmp_path / "cut.npy").write_bytes(OFFICIAL.read_bytes()[:4000])
        cases["truncated official"] = tmp_path / "cut.npy"
    np.save(tmp_path / "keys.npy", np.array({"eq": {"vocals": np.ones(32769)}}, dtype=object), allow_pickle=True)
    cases["wrong keys"] = tmp_path / "keys.npy"
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    cases["foreign npz"] = tmp_path / "other.npz"
    bad = {"eq": {"vocals": np.ones(100)}, "compression": {"vocals": [-14, 1]}, "imager": {"vocals": 0.9},
           "loudness": {"vocals": [-25.0]}}
    np.save(tmp_path / "shape.npy", np.array(bad, dtype=object), allow_pickle=True)
    cases["wrong eq length"] = tmp_path / "shape.npy"
    np.save(tmp_path / "numeric.npy", np.ones(4))
    cases["numeric npy"] = tmp_path / "numeric.npy"
    for what, path in cases.items():
        with pytest.raises(MixfxError) as err:
            load_features(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg, (what, msg)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_restricted_unpickler_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"eq": {"vocals": np.ones(32769)}, "compression": {"vocals": _Exploit(marker)},
               "imager": {"vocals": 0.9}, "loudness": {"vocals": -25.0}}
    np.save(tmp_path / "evil.npy", np.array(payload, dtype=object), allow_pickle=True)
    with pytest.raises(MixfxError, match="refusing to load"):
        load_features(tmp_path / "evil.npy")
    assert not marker.exists()
    # the same file through numpy's own loader would run the payload (sanity check of the test)
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()
