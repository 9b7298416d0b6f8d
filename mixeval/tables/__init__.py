"""mixeval.tables: result tables as DataFrames, and their CSV / Markdown / LaTeX files.

Modules:
    render  :func:`write_table` (CSV + Markdown + LaTeX, atomically, optional bold-best cells).
    table1  Table 1 (DCIMIG, DCI RF Expl per representation and case): :func:`table1_frame`, :func:`write_table1`.
    table2  Table 2 (objective style transfer): :func:`table2_wide`, :func:`table2_markdown`, :func:`table2_tex`.
"""

from mixfx._lazy import lazy_exports

_EXPORTS = {
    "table1_frame": "mixeval.tables.table1",
    "table2_markdown": "mixeval.tables.table2",
    "table2_tex": "mixeval.tables.table2",
    "table2_wide": "mixeval.tables.table2",
    "write_table": "mixeval.tables.render",
    "write_table1": "mixeval.tables.table1",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
