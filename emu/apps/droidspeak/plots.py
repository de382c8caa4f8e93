"""Figures of the committed profile: ``python -m emu.apps.droidspeak.plots [--out docs/img]``.

- ``droidspeak_heatmap.png``: one panel per ordered pair, the continuation-loss increase (%) of recomputing
  layers [start, end] (row = start, column = end; symmetric log colour scale, blue = better than the receiver's
  own prefill), the chosen group at 2 % outlined;
- ``droidspeak_pareto.png``: recompute cost (layers) against loss increase for every group of every pair, with
  each pair's Pareto front.

``--tables`` prints the markdown tables of docs/droidspeak.md instead (deviations, profile per pair).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_profile(models_dir=None) -> dict:
    from emu.apps.artifacts import read_card
    from emu.apps.droidspeak.variants import APP

    return read_card(APP, "profile", models_dir).read_json("profile.json")


def heatmap(profile: dict, out: Path, budget: str = "2") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import SymLogNorm

    pairs = list(profile["pairs"])
    n_layers = max(g["group"][1] for g in profile["pairs"][pairs[0]]["groups"] if g["group"]) + 1
    cols = 4
    rows = (len(pairs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.6 * rows), squeeze=False)
    top = max(1.0, max(abs(g["loss_increase_pct"]) for p in pairs for g in profile["pairs"][p]["groups"]))
    norm = SymLogNorm(linthresh=1.0, vmin=-top, vmax=top)
    im = None
    for ax, pair in zip(axes.flat, pairs):
        grid = np.full((n_layers, n_layers), np.nan)
        full = None
        for g in profile["pairs"][pair]["groups"]:
            if g["group"] is None:
                full = g["loss_increase_pct"]
                continue
            a, b = g["group"]
            grid[a, b] = g["loss_increase_pct"]
            ax.text(b, a, f"{g['loss_increase_pct']:.1f}", ha="center", va="center", fontsize=5.5)
        im = ax.imshow(grid, norm=norm, cmap="RdBu_r", origin="upper")
        chosen = profile["pairs"][pair]["chosen"][budget]
        if chosen != "none":
            a, b = map(int, chosen.split("-"))
            ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, ec="red", lw=2))
        s, r = pair.split(",")
        ax.set_title(f"{s} → {r}\nfull reuse {full:.1f} %, chosen {chosen}", fontsize=8)
        ax.set_xlabel("last recomputed layer", fontsize=7)
        ax.set_ylabel("first recomputed layer", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.subplots_adjust(hspace=0.55, wspace=0.35, right=0.86)
    fig.colorbar(im, cax=fig.add_axes([0.89, 0.3, 0.015, 0.4]), label="continuation-loss increase (%)")
    path = out / "droidspeak_heatmap.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def pareto(profile: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, (pair, entry) in enumerate(profile["pairs"].items()):
        groups = {g["label"]: g for g in entry["groups"]}
        xs = [g["recompute_layers"] + 0.04 * (k - 6) for g in entry["groups"]]
        ys = [max(g["loss_increase_pct"], 0.01) for g in entry["groups"]]
        line = ax.scatter(xs, ys, s=8, alpha=0.35)
        front = [groups[lbl] for lbl in entry["pareto"]]
        ax.plot([g["recompute_layers"] for g in front], [max(g["loss_increase_pct"], 0.01) for g in front],
                "-o", ms=3, color=line.get_facecolor()[0], label=pair.replace(",", " → "))
    ax.axhline(2.0, color="grey", ls="--", lw=1)
    ax.text(0.05, 2.2, "2 % budget", fontsize=7, color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("recomputed layers (of 6)")
    ax.set_ylabel("continuation-loss increase (%)")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("every contiguous group per pair; lines: Pareto fronts")
    path = out / "droidspeak_pareto.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def tables(profile: dict, models_dir=None) -> str:
    """Markdown tables: weight and per-layer KV deviation, and per pair full reuse, chosen groups and front."""
    from emu.apps.droidspeak.variants import VARIANTS, variant_card

    lines = ["| agent | held-out loss, own corpus (base → agent) | weight deviation from base | per layer 0..5 |",
             "|---|---|---|---|"]
    for name in VARIANTS:
        card = variant_card(name, models_dir)
        m = card.metrics
        corpus = card.data["data"]["corpus"]
        wd = m["weight_deviation_from_base"]
        per = " ".join(f"{wd[f'layer{i}']:.3f}" for i in range(6))
        lines.append(f"| {name} | {m['base_held_out_loss'][corpus]:.3f} → {m['held_out_loss'][corpus]:.3f} | "
                     f"{wd['all']:.3f} | {per} |")
    lines += ["", "| agents | weight deviation | KV deviation per layer 0..5 (sender vs receiver, receiver's text) |",
              "|---|---|---|"]
    for key, wd in profile["weight_deviation"].items():
        a, b = key.split(",")
        kv = profile["kv_deviation"].get(f"{a},{b}", [])
        lines.append(f"| {a} – {b} | {wd['all']:.3f} | {' '.join(f'{x:.3f}' for x in kv)} |")
    lines += ["", "| sender → receiver | full reuse: loss % / top-1 | chosen @1 % | @2 %: group, loss %, top-1, "
              "recompute | @5 % | Pareto front |", "|---|---|---|---|---|---|"]
    for pair, entry in profile["pairs"].items():
        g = {x["label"]: x for x in entry["groups"]}
        full = g["none"]
        c2 = g[entry["chosen"]["2"]]
        lines.append(f"| {pair.replace(',', ' → ')} | {full['loss_increase_pct']:.2f} / {full['top1_agreement']:.3f} | "
                     f"{entry['chosen']['1']} | {c2['label']}, {c2['loss_increase_pct']:.2f}, "
                     f"{c2['top1_agreement']:.3f}, {c2['recompute_layers']}/6 | {entry['chosen']['5']} | "
                     f"{' '.join(entry['pareto'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--tables", action="store_true", help="print the markdown tables instead of drawing")
    args = parser.parse_args(argv)
    if args.tables:
        print(tables(load_profile(args.models_dir), args.models_dir))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = load_profile(args.models_dir)
    for p in (heatmap(profile, out), pareto(profile, out)):
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
