"""Covers: Grace++ (masked-latent neural video) against H.265 with retransmission, FEC and freeze, and the same
codec trained without masking, across random packet loss.

Scenario: the held-out carphone clip at 128x128, 200 kbit/s target, 100 ms RTT, a 2 Mbit/s bottleneck with loss
(the access-bottleneck network of ``emu.topologies``, as ``emu eval grace``).
Prints quality and delay tables and draws SSIM dB and p95 frame delay against loss.

    python examples/05_grace.py                  # figure and CSV in runs/grace/
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from emu.apps.grace.eval import SCHEMES, GraceEvalConfig, evaluate  # noqa: E402

LOSSES = (0.0, 0.1, 0.2, 0.3, 0.5)
STYLE = {"grace": ("C0", "o-"), "grace_nomask": ("C0", "o--"), "h265_retx": ("C3", "s-"),
         "h265_fec20": ("C2", "^-"), "h265_fec50": ("C2", "^--"), "h265_freeze": ("C7", "x:")}


def plot(table: pd.DataFrame, path: Path) -> None:
    """Two panels: SSIM dB of rendered frames (non-rendered frames count as shown in the legend) and p95 delay."""
    fig, (ax_q, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
    for scheme, rows in table.groupby("scheme", sort=False):
        color, fmt = STYLE.get(scheme, ("k", "o-"))
        rows = rows.sort_values("loss")
        ax_q.plot(rows["loss"] * 100, rows["ssim_db"], fmt, color=color, label=scheme)
        ax_d.plot(rows["loss"] * 100, rows["frame_delay_p95_s"] * 1000, fmt, color=color, label=scheme)
    ax_q.set(xlabel="packet loss (%)", ylabel="SSIM (dB) of rendered frames", title="quality")
    ax_d.set(xlabel="packet loss (%)", ylabel="frame delay p95 (ms)", title="tail frame delay", yscale="log")
    ax_q.grid(alpha=0.3)
    ax_d.grid(alpha=0.3, which="both")
    ax_d.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(seed: int = 0, out_dir: str | None = "runs/grace", losses: tuple = LOSSES) -> pd.DataFrame:
    rows = []
    for loss in losses:
        for scheme, metrics in evaluate(GraceEvalConfig(loss=loss), seed=seed).items():
            rows.append({"loss": loss, "scheme": scheme, **metrics})
    table = pd.DataFrame(rows)
    for value in ("ssim_db", "non_rendered_frac", "frame_delay_p95_s", "stall_s", "kbps"):
        wide = table.pivot_table(index="loss", columns="scheme", values=value, dropna=False)
        print(f"\n{value}")
        print(wide[[s for s in SCHEMES if s in wide]].to_string(float_format=lambda x: f"{x:.3f}"))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "grace_vs_loss.csv", index=False)
        plot(table, out / "grace_vs_loss.png")
        print(f"\nfigure and table in {out}/")
    return table


if __name__ == "__main__":
    main()
