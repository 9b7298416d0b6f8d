"""The FXmanipulator: the paper's random chain of six effects, batched, seeded, on CPU or CUDA.

Order (paper §2.1, official code §4.1): {EQ, DRC} → {pan, imager} → reverb (parallel send) → gain,
with the order inside each pair swapped at random per example. Each effect is applied with its own
probability and uniformly drawn parameters; every effect except the gain is followed by the
official RMS renormalisation (the output keeps the input's level). Parameters are drawn on a CPU
generator (so CPU and CUDA runs agree), then moved to the audio's device.

Example:
    >>> chain = FXManipulator()                                         # doctest: +SKIP
    >>> g = torch.Generator().manual_seed(0)
    >>> y, config = chain(x, stems="vocals", generator=g)               # x: (B, 2, T)
    >>> y2 = chain.apply(other_content, config)                          # same FX, other content
    >>> config.table(), config.factor_matrix()
"""

from __future__ import annotations

import functools
import logging

import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fx.convolution import IRSpectra
from mixfx.fx.effects import compressor, eq, gain, imager, panner, reverb, stereo
from mixfx.fx.ir import IRBank, synthetic_ir_bank
from mixfx.fx.kernels import Backend, parse_backend
from mixfx.fx.paramspec import DRAWN_IR_INDEX, DRAWN_IR_RT60, DRAWN_UNIFORM
from mixfx.fx.params import FX_NAMES, STEM_KINDS, FXConfig, FXProbabilities, FXRanges

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def default_ir_bank(sample_rate: int = SAMPLE_RATE) -> IRBank:
    """The built-in synthetic IR bank (built once per process and sample rate)."""
    return synthetic_ir_bank(sample_rate=sample_rate)


class FXManipulator:
    """Random FX chain of the paper (EQ, compressor, pan, imager, convolution reverb, gain).

    Args:
        sample_rate: audio rate in Hz.
        ranges: parameter ranges (official defaults).
        probabilities: per-effect application probabilities (official defaults).
        ir_bank: impulse responses for the reverb; default: the built-in synthetic bank.
        backend: a :class:`mixfx.fx.kernels.Backend` or its name: ``"auto"`` (numba kernels on CPU,
            Triton kernels on CUDA), ``"numba"``, ``"triton"`` or ``"torch"`` (FFT filters,
            parallel-scan compressor); the older ``"loop"`` (numba), ``"fft"``/``"scan"`` (torch) still work.
    """

    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        ranges: FXRanges | None = None,
        probabilities: FXProbabilities | None = None,
        ir_bank: IRBank | None = None,
        backend: str | Backend = Backend.AUTO,
    ) -> None:
        self.sample_rate = sample_rate
        self.ranges = ranges or FXRanges()
        self.probabilities = probabilities or FXProbabilities()
        self.ir_bank = ir_bank if ir_bank is not None else default_ir_bank(sample_rate)
        if self.ir_bank.sample_rate != sample_rate:
            raise MixfxError(f"IR bank is at {self.ir_bank.sample_rate} Hz, the chain at {sample_rate} Hz")
        self.backend = parse_backend(backend)
        self.specs = self.ranges.specs(n_irs=len(self.ir_bank), max_rt60_s=max(4.0, float(self.ir_bank.rt60_s.max())))
        self.ir_spectra = IRSpectra(self.ir_bank.irs)

    # ------------------------------------------------------------------------------------ sampling

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        stems: str | list[str] = "mixture",
        single_fx: str | None = None,
        probabilities: FXProbabilities | None = None,
    ) -> FXConfig:
        """Draw one configuration per example.

        Args:
            batch_size: number of examples.
            generator: a CPU ``torch.Generator`` (the only source of randomness).
            stems: stem kind per example (or one for all): drums, bass, other, vocals, mixture.
            single_fx: apply exactly this effect (probability 1, reverb fully wet, no drums routing).
            probabilities: override the chain's probabilities (probability scheduling).

        Returns:
            The sampled :class:`FXConfig`. The same number of random draws is consumed whatever
            the probabilities, so a seed gives the same parameters under any schedule.
        """
        stems = [stems] * batch_size if isinstance(stems, str) else list(stems)
        if len(stems) != batch_size:
            raise MixfxError(f"got {len(stems)} stem kinds for a batch of {batch_size}")
        bad = sorted(set(stems) - set(STEM_KINDS))
        if bad:
            raise MixfxError(f"unknown stem kind {bad[0]!r}; expected one of {', '.join(STEM_KINDS)}")
        if single_fx is not None and single_fx not in FX_NAMES:
            raise MixfxError(f"unknown effect {single_fx!r} for single_fx; expected one of {', '.join(FX_NAMES)}")
        probs = probabilities or self.probabilities
        g = generator
        values = self.draw_values(batch_size, g, single_fx)
        coin = torch.rand(len(FX_NAMES), batch_size, generator=g)
        applied = {}
        for i, fx in enumerate(FX_NAMES):
            if single_fx is not None:
                applied[fx] = torch.full((batch_size,), fx == single_fx)
            else:
                applied[fx] = coin[i] < probs.for_effect(fx, stems)
        order = torch.rand(2, batch_size, generator=g) < 0.5
        return FXConfig(stems, applied, values, order[0], order[1], self.specs, single_fx)

    def draw_values(self, batch_size: int, generator: torch.Generator, single_fx: str | None = None
                    ) -> dict[str, torch.Tensor]:
        """Every parameter of the tables for ``batch_size`` examples: ``"effect.param"`` → ``(batch,)``.

        Uniform parameters take one ``float64`` draw each, in table order (:meth:`ParamSpec.draw`);
        then the IR bank draws the IRs (uniform over RT60 groups), whose RT60 is the descriptor; in
        single-FX mode a parameter with a ``single_fx_value`` takes it.
        """
        values: dict[str, torch.Tensor] = {}
        for s in self.specs:
            if s.drawn == DRAWN_UNIFORM:
                values[s.key] = s.draw(torch.rand(batch_size, generator=generator, dtype=torch.float64))
        ir_index = self.ir_bank.sample(batch_size, generator)
        for s in self.specs:
            if s.drawn == DRAWN_IR_INDEX:
                values[s.key] = ir_index
        for s in self.specs:
            if s.drawn == DRAWN_IR_RT60:
                values[s.key] = self.ir_bank.rt60_s[ir_index].float()
        for s in self.specs:
            if single_fx == s.effect and s.single_fx_value is not None:
                values[s.key] = torch.full((batch_size,), float(s.single_fx_value))
        return values

    # ------------------------------------------------------------------------------------ applying

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator, stems: str | list[str] = "mixture",
                 single_fx: str | None = None, probabilities: FXProbabilities | None = None) -> tuple[torch.Tensor, FXConfig]:
        """Sample a configuration for ``x`` and apply it. Returns ``(y, config)``."""
        config = self.sample(x.shape[0], generator=generator, stems=stems, single_fx=single_fx, probabilities=probabilities)
        return self.apply(x, config), config

    def apply(self, x: torch.Tensor, config: FXConfig) -> torch.Tensor:
        """Apply a sampled configuration to a batch ``(batch, 2, samples)`` of the same size.

        The effects run as their in-place stages (``equalize_``, ``compress_``, ``pan_and_image_``,
        ``reverb_``, ``gain_`` of :mod:`mixfx.fx.effects`) on a copy of ``x``; they equal the
        composition of the effects' functions with the official renormalisation after each one
        except the gain.

        Raises:
            MixfxError: wrong shape, or a batch size different from the configuration's.
        """
        if x.ndim != 3 or x.shape[1] != 2:
            raise MixfxError(f"expected stereo audio of shape (batch, 2, samples), got {tuple(x.shape)}")
        if x.shape[0] != len(config):
            raise MixfxError(f"configuration has {len(config)} examples, audio batch has {x.shape[0]}")
        dev, sr, be = x.device, self.sample_rate, self.backend
        on = {k: v.to(dev) for k, v in config.applied.items()}
        val = {k: v.to(dev) for k, v in config.values.items()}
        eq_first, pan_first = config.eq_first.to(dev), config.pan_first.to(dev)
        y = x.to(torch.float32, copy=True).contiguous()

        eq_b, eq_a = eq.equalizer_coefficients(sr, **eq.equalizer_arguments(val, shelf_q=self.ranges.shelf_q))
        comp = compressor.TABLE.arguments(val)
        eq.equalize_(y, on["eq"] & eq_first, eq_b, eq_a, sample_rate=sr, backend=be)
        compressor.compress_(y, on["compressor"], sample_rate=sr, backend=be, **comp)
        eq.equalize_(y, on["eq"] & ~eq_first, eq_b, eq_a, sample_rate=sr, backend=be)
        stereo.pan_and_image_(y, pan_on=on["pan"], pan_first=pan_first, imager_on=on["imager"],
                              **panner.TABLE.arguments(val), **imager.TABLE.arguments(val), backend=be)
        drums = torch.tensor([s == "drums" for s in config.stems], device=dev)
        if config.single_fx is not None:  # single-FX mode: plain, fully wet reverb for every stem
            drums = torch.zeros_like(drums)
        y = reverb.reverb_(y, sample_rate=sr, spectra=self.ir_spectra, reverb_on=on["reverb"], drums=drums,
                           ir_index=val["reverb.ir_index"], dry_weight=val["reverb.dry_weight"], backend=be)
        y = gain.gain_(y, gain_on=on["gain"], **gain.TABLE.arguments(val))
        return y.to(x.dtype)
