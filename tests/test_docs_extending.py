"""docs/extending.md: every Python example in it runs (each in its own interpreter, from a temporary folder)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"


def _blocks() -> list[tuple[str, str]]:
    """(section title, code) of every ```python block, in order."""
    text = DOC.read_text()
    out, title = [], "preamble"
    for m in re.finditer(r"^## ([^\n]+)$|^```python\n(.*?)^```", text, flags=re.M | re.S):
        if m.group(1):
            title = m.group(1).strip()
        else:
            out.append((title, m.group(2)))
    return out


BLOCKS = _blocks()


def test_the_page_has_one_example_per_extension_point():
    titles = " ".join(t for t, _ in BLOCKS).lower()
    for part in ("queue", "congestion", "marking policy", "app"):
        assert part in titles, f"docs/extending.md has no runnable example under a '{part}' heading"


@pytest.mark.parametrize("title,code", BLOCKS, ids=[t for t, _ in BLOCKS])
def test_example_runs(title, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, f"{title}: example failed\n{proc.stdout}\n{proc.stderr}"
    assert "ok" in proc.stdout.split(), f"{title}: the example must end by printing ok after its own checks"
