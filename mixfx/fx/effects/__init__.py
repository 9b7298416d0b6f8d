"""The six effects of the FX chain, one module per effect family.

Each module holds the effect's public function (its textbook definition, batched, any device),
the fused in-place stage the chain runs (:class:`mixfx.fx.chain.FXManipulator`), and its
parameter table :data:`TABLE` (:class:`mixfx.fx.paramspec.EffectTable`):

* :mod:`.eq`: ``equalizer`` (five RBJ biquads), stage ``equalize_``.
* :mod:`.compressor`: ``compressor``, ``gain_computer``, stage ``compress_``.
* :mod:`.panner`: ``pan``, ``pan_gains``; :mod:`.imager`: ``stereo_imager``; their fused
  stage ``pan_and_image_`` in :mod:`.stereo`.
* :mod:`.reverb`: ``convolution_reverb``, ``drums_reverb``, stage ``reverb_``.
* :mod:`.gain`: ``gain``, stage ``gain_``.

:mod:`mixfx.fx.functional` gathers the public functions in one namespace. The compiled backends
live in :mod:`mixfx.fx.kernels`; this package is their only caller.
"""

from mixfx.fx.effects import compressor, eq, gain, imager, panner, reverb, stereo
from mixfx.fx.effects.eq import EQ_BAND_NAMES
from mixfx.fx.effects.panner import PAN_LAWS

TABLES = (eq.TABLE, compressor.TABLE, panner.TABLE, imager.TABLE, reverb.TABLE, gain.TABLE)
"""The effects' parameter tables, in the chain's outer order (EQ↔compressor, pan↔imager swap at random)."""
EFFECTS = {t.name: t for t in TABLES}
"""Effect name → its :class:`~mixfx.fx.paramspec.EffectTable`."""

__all__ = ["EFFECTS", "EQ_BAND_NAMES", "PAN_LAWS", "TABLES", "compressor", "eq", "gain", "imager", "panner",
           "reverb", "stereo"]
