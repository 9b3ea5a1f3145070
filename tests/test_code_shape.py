"""House rule: no function or method in the repository is longer than 80 lines.

Every git-tracked ``.py`` file is parsed with :mod:`ast`; a function's length runs from its
``def`` line to its last line (decorators excluded, docstring and comments included).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80


def tracked_python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", "*.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [REPO / name for name in listed.stdout.split("\0") if name]


def long_functions(path: Path, limit: int, root: Path = REPO) -> list[str]:
    """``path:line name (N lines)`` (path relative to ``root``) for each function or method
    over ``limit`` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                name = path.relative_to(root)
                found.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_checker_measures_from_def_to_last_line(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    source = tmp_path / "probe.py"
    source.write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n", encoding="utf-8")
    assert long_functions(source, 80, tmp_path) == ["probe.py:5 long (81 lines)"]


def test_no_function_is_longer_than_80_lines() -> None:
    offenders = [
        problem
        for path in tracked_python_files()
        if path.is_file()
        for problem in long_functions(path, MAX_FUNCTION_LINES)
    ]
    assert not offenders, "functions over 80 lines:\n" + "\n".join(offenders)
