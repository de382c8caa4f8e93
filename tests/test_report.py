"""emu report: one self-contained HTML file for a run directory and for a sweep folder."""
from __future__ import annotations

import base64
import json
import re

import pandas as pd

from emu.cli import main
from tests.conftest import REPO

# any reference a browser would fetch: src/href/... not an inline PNG or an in-page anchor, scripts, styles, frames
EXTERNAL = re.compile(r"""\b(?:src|href|action|poster|srcset)\s*=\s*(?!["']?\s*(?:data:image/png;base64,|#))"""
                      r"""|<script|<link\b|<iframe|<object|<embed|@import|url\(""", re.IGNORECASE)


def embedded_images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def check_self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)


def test_run_directory_report(tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(REPO / "examples" / "dumbbell_codel.toml"), "--out", str(out), "--duration", "0.5s",
                 "--seed", "7", "--no-progress", "--pcap", "left->right"]) == 0
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    check_self_contained(text)
    pngs = sorted(out.glob("*.png"))
    assert pngs and sorted(embedded_images(text)) == sorted(p.read_bytes() for p in pngs)
    summary = json.loads((out / "summary.json").read_text())
    for flow in summary["flows"]:
        assert f"<td>{flow['flow']}</td>" in text
        assert f"<td>{flow['delivered_pkts']}</td>" in text
    for needle in ("dumbbell-codel", "<td class=\"k\">7</td>", "left-right.egress.pcap", "10.0.0.1",
                   "&quot;queue&quot;: &quot;codel&quot;", "Drops by place and reason", "left-&gt;right"):
        assert needle in text, needle


def test_sweep_folder_report(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('name = "dummy-grid"\neval = "dummy"\nreplicates = 3\nroot_seed = 5\nmetrics = ["value"]\n'
                     '[grid]\nx = [0.0, 10.0]\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    target = tmp_path / "elsewhere.html"
    assert main(["report", str(out), "--out", str(target)]) == 0
    text = target.read_text()
    check_self_contained(text)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 2 and sorted(embedded_images(text)) == sorted(p.read_bytes() for p in pngs)
    summary = pd.read_csv(out / "summary.csv")
    for _, row in summary.iterrows():
        assert f"<td>{row['label']}</td>" in text and f"{row['ci95_high']:.6g}" in text
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 6 and all(f"<td>{m['seed']}</td>" in text for m in manifest)
    assert "dummy-grid" in text and "Sweep file" in text and 'eval = &quot;dummy&quot;' in text


def test_not_a_results_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_the_self_containment_check_catches_external_references():
    import pytest

    page = '<!DOCTYPE html><html>{}</html>'
    check_self_contained(page.format('<img src="data:image/png;base64,AAAA">'))
    for bad in ('<img src="https://example.org/a.png">', '<img src="figure.png">', '<a href="//cdn.example/x">', '<script>1</script>',
                '<link rel="stylesheet" href="s.css">', '<style>@import "x.css";</style>',
                '<div style="background: url(x.png)">'):
        with pytest.raises(AssertionError):
            check_self_contained(page.format(bad))
