"""mixfx.fx: the FXmanipulator chain and its effects.

Public API:

* :class:`mixfx.fx.chain.FXManipulator` — the paper's random FX chain (sample / apply).
* :mod:`mixfx.fx.params` — ``FX_NAMES``, ``FXRanges``, ``FXProbabilities``, ``FXConfig`` (the factors).
* :mod:`mixfx.fx.effects` — one module per effect (function, fused stage, parameter table);
  :mod:`mixfx.fx.functional` — their public functions in one namespace.
* :mod:`mixfx.fx.kernels` — ``Backend`` (``auto``/``numba``/``triton``/``torch``); the backends are private.
* :mod:`mixfx.fx.ir` (impulse-response banks), :mod:`mixfx.fx.loudness` (BS.1770),
  :mod:`mixfx.fx.signal` (dB, biquads, ``match_rms``), :mod:`mixfx.fx.convolution`.
"""
