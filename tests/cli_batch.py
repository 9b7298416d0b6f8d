"""Run many ``mixfx`` / ``mixeval`` command lines in one process, each through its console-script entry point.

A fresh interpreter costs seconds (torch import), so ``tests/test_bad_inputs.py`` runs its whole table
in one ``python tests/cli_batch.py CASES.json RESULTS.json`` subprocess. Each case calls the function
``pyproject.toml`` names in ``[project.scripts]`` (``mixfx.cli:main`` / ``mixeval.cli:main``) with its
own ``sys.argv``, with file descriptors 1 and 2 redirected to files (so C-level writes are caught as
well), and records the exit status, both outputs, and the file tree of ``root`` before and after.

CASES.json: ``{"root": folder to snapshot, "umask": int or null, "cases": [{"id", "prog", "argv"}]}``.
RESULTS.json: ``{"modules": {prog: file of its cli module}, "results": {id: {"rc", "stdout", "stderr",
"new", "gone", "seconds"}}}``; ``rc`` is ``"exception"`` when ``main`` raised anything but ``SystemExit``
(its traceback is then in ``stderr``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


def tree(root: Path) -> set[str]:
    """Every path below ``root``, relative, folders with a trailing ``/``."""
    return {str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in root.rglob("*")}


def run_case(main, prog: str, argv: list[str]) -> tuple[int | str, str, str]:
    """``main()`` with ``sys.argv = [prog, *argv]``; returns ``(exit status, stdout, stderr)``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.argv = [prog, *argv]
        try:
            try:
                main()
                rc: int | str = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - a bug: keep its traceback for the test to show
                traceback.print_exc()
                rc = "exception"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return rc, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")


def main(cases_path: str, results_path: str) -> None:
    spec = json.loads(Path(cases_path).read_text(encoding="utf-8"))
    if spec.get("umask") is not None:
        os.umask(int(spec["umask"]))
    root = Path(spec["root"])
    modules = {prog: importlib.import_module(f"{prog}.cli") for prog in {c["prog"] for c in spec["cases"]}}
    results = {}
    for case in spec["cases"]:
        before = tree(root)
        t0 = time.perf_counter()
        rc, out, err = run_case(modules[case["prog"]].main, case["prog"], case["argv"])
        after = tree(root)
        results[case["id"]] = {"rc": rc, "stdout": out, "stderr": err, "new": sorted(after - before),
                               "gone": sorted(before - after), "seconds": time.perf_counter() - t0}
    Path(results_path).write_text(json.dumps({"modules": {p: m.__file__ for p, m in modules.items()},
                                              "results": results}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
