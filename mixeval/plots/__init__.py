"""mixeval.plots: figures only (matplotlib, imported when a figure is drawn).

Modules:
    tsne      Fig. 2: 2-D maps of FX embeddings, :func:`scatter_grid`.
    violin    Fig. 3: listening-test ratings, :func:`violin_figure`.
    schedule  the probability schedule of an encoder run, :func:`schedule_figure`.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "schedule": ("schedule_figure",), "tsne": ("scatter_grid",), "violin": ("violin_figure",),
})
