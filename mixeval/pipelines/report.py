"""The run report of ``mixeval reproduce``: ``summary.md`` and ``summary.html`` from one list of sections.

A section is Markdown text (tables, notes, ``![caption](figure.png)`` images with paths relative to the
report folder). The HTML version is the same Markdown rendered with python-markdown's ``tables``
extension, with every PNG inlined as a data URI (the file stands alone) and, after the text, audio
players for the before / after / reference examples (links relative to the report; audio is never
inlined). Both files are written atomically.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mixfx.io.atomic import atomic_write

__all__ = ["AudioExample", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
img { max-width: 100%; } code { background: #f4f4f4; padding: 0 3px; }
.audio td { text-align: left; vertical-align: middle; }
"""


@dataclass(frozen=True)
class AudioExample:
    """One row of players: ``title`` and ``label → audio path`` (relative to the report folder or absolute)."""

    title: str
    files: dict[str, Path] = field(default_factory=dict)


def _inline_images(body: str, folder: Path) -> str:
    def repl(m: re.Match) -> str:
        src = m.group(1)
        path = (folder / src) if not os.path.isabs(src) else Path(src)
        if not src.endswith(".png") or not path.is_file():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="([^"]+)"', repl, body)


def _players(examples: Sequence[AudioExample], folder: Path) -> str:
    if not examples:
        return ""
    rows = []
    for ex in examples:
        cells = []
        for label, path in ex.files.items():
            rel = os.path.relpath(path, folder) if Path(path).is_absolute() else str(path)
            cells.append(f"<td>{html.escape(label)}<br><audio controls preload=\"none\" src=\"{html.escape(rel)}\"></audio></td>")
        rows.append(f"<tr><td><b>{html.escape(ex.title)}</b></td>{''.join(cells)}</tr>")
    return ("<h2>Listen</h2><p>Players link to the run's audio files next to this report (not inlined; a copied "
            "report without them shows empty players).</p><table class=\"audio\">" + "".join(rows) + "</table>")


def write_report(folder: str | os.PathLike, title: str, sections: Sequence[str], *,
                 audio: Sequence[AudioExample] = (), name: str = "summary") -> tuple[Path, Path]:
    """Write ``<folder>/<name>.md`` and ``<name>.html``; returns both paths.

    Args:
        folder: where the report goes (image paths in the sections are relative to it).
        title: the ``#`` heading.
        sections: Markdown blocks, in order.
        audio: players added to the HTML version.
        name: file stem.
    """
    import markdown

    folder = Path(folder)
    text = f"# {title}\n\n" + "\n\n".join(s.strip("\n") for s in sections if s) + "\n"
    md_path, html_path = folder / f"{name}.md", folder / f"{name}.html"
    with atomic_write(md_path, "w", encoding="utf-8") as f:
        f.write(text)
    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{_inline_images(body, folder)}{_players(audio, folder)}</body></html>\n")
    with atomic_write(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return md_path, html_path
