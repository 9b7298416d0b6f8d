"""Render ``checkpoint`` listening-test conditions with a trained FXencoder + MixFXcloner (mixfx style transfer).

A condition names its models in ``checkpoint = "ENCODER.pt,CLONER.pt"`` or in
``options = {encoder = "...", cloner = "...", features = "..."}`` (``features``: FX normalization of
the input stem before conversion, as ``mixfx transfer --features`` does). Each stem of a question is
converted with the cloner conditioned on the FXencoder embedding of the same stem of the reference;
the generator sums the stems for multitrack questions.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mixeval.errors import MixevalError
from mixeval.listening.spec import ConditionSpec


class CheckpointRenderer:
    """Callable renderer for :func:`mixeval.listening.generate.generate_media` (models loaded once per condition)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._loaded: dict[str, tuple] = {}

    @staticmethod
    def model_paths(condition: ConditionSpec) -> tuple[str, str]:
        """``(encoder, cloner)`` paths of a checkpoint condition.

        Raises:
            MixevalError: the condition names fewer than two models.
        """
        opts = dict(condition.options)
        paths = [p.strip() for p in (condition.checkpoint or "").split(",") if p.strip()]
        encoder = opts.get("encoder") or (paths[0] if len(paths) == 2 else None)
        cloner = opts.get("cloner") or (paths[1] if len(paths) == 2 else None)
        if not encoder or not cloner:
            raise MixevalError(
                f"condition {condition.name!r}: a checkpoint condition needs checkpoint = \"ENCODER.pt,CLONER.pt\" "
                f"or options encoder / cloner"
            )
        return encoder, cloner

    def check(self, conditions) -> None:
        """Validate every checkpoint condition before any audio is rendered."""
        for c in conditions:
            if c.source == "checkpoint":
                self.model_paths(c)

    def _models(self, condition: ConditionSpec):
        if condition.name in self._loaded:
            return self._loaded[condition.name]
        from mixfx.fxnorm.targets import load_features
        from mixfx.models.loading import load_models
        from mixfx.models.style_transfer import StyleTransfer

        opts = dict(condition.options)
        encoder, cloner = self.model_paths(condition)
        enc, cl = load_models(Path(encoder), Path(cloner), device=self.device)
        features = load_features(opts["features"]) if opts.get("features") else None
        self._loaded[condition.name] = StyleTransfer(enc, cl, features, device=self.device)
        return self._loaded[condition.name]

    def __call__(self, condition: ConditionSpec, input_audio: torch.Tensor, reference_audio: torch.Tensor, stem: str):
        model = self._models(condition)
        return model(input_audio[None], reference_audio[None], stems=[stem], keys=[condition.name])[0]
