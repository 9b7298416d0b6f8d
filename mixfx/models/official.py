"""Old names of :mod:`mixfx.models.loading`, kept so code written against them still runs.

``load_official_encoder`` / ``load_official_cloner`` never loaded only the official layout: they
read any accepted checkpoint (ours, official, bare state dicts). Use
:func:`mixfx.models.loading.load_encoder` / :func:`~mixfx.models.loading.load_cloner` in new code;
everything else here is the same object as in :mod:`mixfx.models.loading`.
"""

from mixfx.models.loading import (
    describe_state_dict,
    detect_kind,
    load_cloner as load_official_cloner,
    load_encoder as load_official_encoder,
    load_model,
    model_from_checkpoint,
    strip_prefixes,
)

__all__ = ["describe_state_dict", "detect_kind", "load_model", "load_official_cloner", "load_official_encoder",
           "model_from_checkpoint", "strip_prefixes"]
