"""The effects' public functions in one namespace (``from mixfx.fx import functional as F``).

A thin re-export: each function is defined in its effect's module under :mod:`mixfx.fx.effects`
(with that effect's fused stage and parameter table); nothing is defined here.
"""

from mixfx.fx.effects.compressor import compressor, gain_computer, static_reduction_db, time_constant_coefficient
from mixfx.fx.effects.eq import EQ_BAND_NAMES, EQ_BANDS, equalizer, equalizer_coefficients, shelf_filter
from mixfx.fx.effects.gain import gain, gain_factor
from mixfx.fx.effects.imager import imager_gains, imager_side_gain, stereo_imager
from mixfx.fx.effects.panner import PAN_LAWS, pan, pan_gains
from mixfx.fx.effects.reverb import convolution_reverb, drums_reverb, drums_split
from mixfx.fx.signal import biquad_filter, match_rms

__all__ = [
    "EQ_BANDS", "EQ_BAND_NAMES", "PAN_LAWS", "biquad_filter", "compressor", "convolution_reverb", "drums_reverb",
    "drums_split", "equalizer", "equalizer_coefficients", "gain", "gain_computer", "gain_factor", "imager_gains",
    "imager_side_gain", "match_rms", "pan", "pan_gains", "shelf_filter", "static_reduction_db", "stereo_imager",
    "time_constant_coefficient",
]
