"""mixeval.tables: result tables as DataFrames, and their CSV / Markdown / LaTeX files.

Modules:
    render  :func:`write_table` (CSV + Markdown + LaTeX, atomically, optional bold-best cells).
    table1  Table 1 (DCIMIG, DCI RF Expl per representation and case): :func:`table1_frame`, :func:`write_table1`.
    table2  Table 2 (objective style transfer): :func:`table2_wide`, :func:`table2_markdown`, :func:`table2_tex`.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "render": ("write_table",), "table1": ("table1_frame", "write_table1"),
    "table2": ("table2_markdown", "table2_tex", "table2_wide"),
})
