"""Stimulus media helpers: true peak, loudness matching with a ceiling, 16-bit writing, anchor, renderer hook."""

import numpy as np
import pytest
import soundfile as sf

from mixeval.errors import MixevalError
from mixeval.listening.media import (
    anchor, apply_fades, common_level, has_audible_block, match_loudness, true_peak_dbtp, write_pcm16, write_wav16,
)

SR = 48000


def _sine(freq, amp, seconds=1.0, phase=0.0):
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * freq * t + phase)


def test_true_peak_finds_inter_sample_peaks():
    # fs/4 sine with a 45 degree phase: every sample sits at +-A/sqrt(2) (-3 dB), the true peak is A.
    # Faded in and out as the generator does, so the interpolator does not ring at abrupt edges.
    for freq, sample_peak_db in ((SR / 4, 20 * np.log10(0.5 / np.sqrt(2))), (20000.0, None)):
        x = apply_fades(_sine(freq, 0.5, phase=np.pi / 4), SR, 20.0)
        if sample_peak_db is not None:
            assert 20 * np.log10(np.abs(x).max()) == pytest.approx(sample_peak_db, abs=1e-6)
        assert 20 * np.log10(np.abs(x).max()) < -6.2  # sample peak under-reads
        tp = true_peak_dbtp(np.stack([x, x])[None])[0]
        assert tp == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert true_peak_dbtp(np.zeros((1, 2, 100)))[0] == -np.inf


def test_match_loudness_equalises_and_keeps_matching_under_a_ceiling():
    pyln = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(0)
    quiet = 0.01 * rng.standard_normal((2, SR * 2))
    peaky = np.zeros((2, SR * 2))
    peaky[:, ::4800] = 0.9  # sparse clicks: high crest factor
    peaky += 0.001 * rng.standard_normal((2, SR * 2))
    tone = np.stack([_sine(1000, 0.3, 2.0)] * 2)
    x = np.stack([quiet, peaky, tone])
    free = match_loudness(x, SR, target_lufs=-23.0, ceiling_dbtp=None)
    meter = pyln.Meter(SR)
    measured = [meter.integrated_loudness(y.T) for y in free.audio]
    assert np.ptp(measured) < 0.5 and abs(np.mean(measured) + 23) < 0.5
    limited = match_loudness(x, SR, target_lufs=-23.0, ceiling_dbtp=-1.0)
    assert limited.target_lufs < -23.0  # the clicks would exceed -1 dBTP at -23 LUFS
    assert true_peak_dbtp(limited.audio).max() == pytest.approx(-1.0, abs=0.05)
    measured = [meter.integrated_loudness(y.T) for y in limited.audio]
    assert np.ptp(measured) < 0.5  # still matched to each other
    assert limited.gain_db == pytest.approx(free.gain_db - (-23.0 - limited.target_lufs))
    with pytest.raises(MixevalError, match="q01: silent"):
        match_loudness(np.stack([tone, np.zeros_like(tone)]), SR, names=["q01: ok", "q01: silent"])


def test_common_level_lowers_all_files_by_the_largest_excess():
    loud = np.array([-20.0, -30.0, -15.0])
    peak = np.array([-5.0, -20.0, -2.0])  # at -23 LUFS: -8, -13, -10 dBTP -> all fit under -1
    level, excess = common_level(loud, peak, target_lufs=-23.0, ceiling_dbtp=-1.0)
    assert level == -23.0 and not excess.any()
    peak = np.array([-5.0, -4.0, -2.0])  # the second file would peak at -4 + 7 = +3 dBTP: 4 dB over
    level, excess = common_level(loud, peak, target_lufs=-23.0, ceiling_dbtp=-1.0)
    assert level == pytest.approx(-27.0) and excess == pytest.approx([0.0, 4.0, 0.0])
    assert (peak + level - loud).max() == pytest.approx(-1.0)
    assert common_level(loud, peak, target_lufs=-23.0, ceiling_dbtp=None) == (-23.0, pytest.approx([0, 0, 0]))


def test_write_pcm16_flac_is_lossless_and_smaller(tmp_path):
    x = np.stack([_sine(440, 0.3, 1.0), _sine(660, 0.2, 1.0)])
    write_pcm16(tmp_path / "a.wav", x, SR)
    write_pcm16(tmp_path / "a.flac", x, SR, media_format="flac")
    info = sf.info(str(tmp_path / "a.flac"))
    assert (info.format, info.subtype) == ("FLAC", "PCM_16")
    assert np.array_equal(sf.read(tmp_path / "a.flac")[0], sf.read(tmp_path / "a.wav")[0])
    assert (tmp_path / "a.flac").stat().st_size < 0.7 * (tmp_path / "a.wav").stat().st_size
    with pytest.raises(MixevalError, match="expected one of"):
        write_pcm16(tmp_path / "a.mp3", x, SR, media_format="mp3")
    assert not (tmp_path / "a.mp3").exists()


def test_write_wav16_counts_clipping(tmp_path):
    x = np.stack([_sine(100, 1.2, 0.1), _sine(100, 0.5, 0.1)])
    n = write_wav16(tmp_path / "a.wav", x, SR)
    assert n == int(np.count_nonzero(np.abs(x) > 32767 / 32768))
    y, sr = sf.read(tmp_path / "a.wav")
    assert sr == SR and sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"
    assert np.abs(y).max() <= 1.0 and np.allclose(y[:, 1], x[1], atol=1 / 32768)
    assert write_wav16(tmp_path / "b.wav", 0.5 * x, SR) == 0


def test_anchor_is_mono_low_pass_and_silence_detection():
    low = np.stack([_sine(500, 0.4), _sine(500, 0.2)])
    y = anchor(low, SR, cutoff_hz=3500)
    assert np.array_equal(y[0], y[1])
    mid = slice(SR // 4, 3 * SR // 4)
    assert np.abs(y[0, mid]).max() == pytest.approx(0.3, rel=1e-3)  # mono sum (mean), pass band untouched
    high = np.stack([_sine(8000, 0.4)] * 2)
    assert np.abs(anchor(high, SR, cutoff_hz=3500)[0, mid]).max() < 0.4 * 10 ** (-40 / 20)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, SR))
    assert has_audible_block(x, SR) and not has_audible_block(np.zeros((2, SR)), SR)
    assert not has_audible_block(1e-6 * x, SR)  # about -120 dBFS
