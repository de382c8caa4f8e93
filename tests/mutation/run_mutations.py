"""Mutation check: apply one-line mutations to key mechanisms and report whether the test suite catches each.

    python tests/mutation/run_mutations.py            # every mutation; prints a table, exit 1 if one survives
    python tests/mutation/run_mutations.py --only codel_law --json

Each mutation replaces one exact snippet in one file of a copy of the working tree (the checkout itself is never
modified), then runs the tests named for it in that copy. "caught" means those tests failed. A snippet that is
not found exactly once is reported as "stale" (the table needs updating), tests that all skip as "SKIPPED", and
tests still running at ``--timeout`` as "TIMEOUT": none of these counts as caught.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str
    mechanism: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("swiftqueue_argmin", "SwiftQueue's per-packet argmin (L iff pred_L <= pred_C + margin) -> the larger",
             "emu/apps/swiftqueue/policies.py", "            if pl <= pc + margin:",
             "            if pl >= pc + margin:",
             ("tests/apps/test_swiftqueue_policies.py", "tests/apps/test_swiftqueue_scenarios.py")),
    Mutation("swiftqueue_gate", "SwiftQueue cascade gate needs both the newest and the EWMA gap -> either one",
             "emu/apps/swiftqueue/policies.py", "> self.gate_s and tr.ewma[1] - tr.ewma[0] > self.gate_s",
             "> self.gate_s or tr.ewma[1] - tr.ewma[0] > self.gate_s", ("tests/apps/test_swiftqueue_policies.py",)),
    Mutation("cubic_reno_friendly", "Cubic W_est grows by alpha_cubic = 3(1-beta)/(1+beta) (RFC 9438 §4.3) -> by 1",
             "emu/transport/cc/cubic.py", "alpha = 1.0 if self.w_est_pkts >= self.w_max_pkts else self.alpha_cubic",
             "alpha = 1.0", ("tests/transport/test_cc.py",)),
    Mutation("kvblend_selection", "CacheBlend recomputes the highest-deviation tokens -> the lowest",
             "emu/apps/kvblend/blend.py", "return torch.topk(dev, m).indices.numpy(), dev.numpy()",
             "return torch.topk(dev, m, largest=False).indices.numpy(), dev.numpy()",
             ("tests/apps/test_kvblend.py",)),
    Mutation("droidspeak_choice", "DroidSpeak picks the cheapest layer group within the loss budget -> the dearest",
             "emu/apps/droidspeak/profile.py", "return min(ok, key=lambda r: (r.recompute_layers, r.loss_increase_pct))",
             "return max(ok, key=lambda r: (r.recompute_layers, r.loss_increase_pct))",
             ("tests/apps/test_droidspeak.py",)),
    Mutation("dualpi2_coupling", "DualPI2 coupling factor k = 2 (RFC 9332 §A.1) -> 1",
             "emu/queues/dualpi2.py", "    k: float = 2.0 ", "    k: float = 1.0 ",
             ("tests/queues/test_dualpi2.py",)),
    Mutation("codel_law", "CoDel control law interval/sqrt(count) (RFC 8289 §5.5) -> interval/count",
             "emu/queues/codel.py", "self.drop_next_s = now_s + interval / sqrt(self.count)",
             "self.drop_next_s = now_s + interval / self.count", ("tests/queues/test_codel.py",)),
    Mutation("opportunity_size", "Mahimahi delivery opportunity 1504 bytes -> 1500",
             "emu/links/schedule.py", "MAHIMAHI_OPPORTUNITY_BYTES = 1504", "MAHIMAHI_OPPORTUNITY_BYTES = 1500",
             ("tests/links/test_trace_link.py", "tests/links/test_schedule.py")),
    Mutation("prague_gain", "Prague/DCTCP EWMA gain g = 1/16 (RFC 8257 §4.2) -> 1/8",
             "emu/transport/cc/prague.py", "g: float = 1.0 / 16.0 ", "g: float = 1.0 / 8.0 ",
             ("tests/transport/test_cc.py",)),
    Mutation("prague_response", "Prague CE response cwnd (1 - alpha/2) -> (1 - alpha)",
             "emu/transport/cc/prague.py", "self.cwnd_bytes * (1.0 - self.alpha / 2.0)",
             "self.cwnd_bytes * (1.0 - self.alpha)", ("tests/transport/test_cc.py",)),
    Mutation("chatterbox_carrying", "Chatterbox packet carries the unacknowledged tokens -> only the newest token",
             "emu/apps/chatterbox/schemes.py", "self._send(packets[0])  # oldest first",
             "self._send([index])  # oldest first", ("tests/apps/test_chatterbox.py",)),
    Mutation("kvfetch_level_order", "KV-fetch budget controller tries the best level first -> the smallest first",
             "emu/apps/kvfetch/controller.py", "        for level in menu.levels:\n",
             "        for level in reversed(menu.levels):\n", ("tests/apps/test_kvfetch_controller.py",)),
    Mutation("kvfetch_budget_share", "KV-fetch budget split over the chunks left -> the whole budget per chunk",
             "emu/apps/kvfetch/controller.py", "share_s = remaining_s / n_left", "share_s = remaining_s",
             ("tests/apps/test_kvfetch_controller.py",)),
    Mutation("kvfetch_text_fallback", "KV-fetch text when it meets the SLO -> never text within the SLO",
             "emu/apps/kvfetch/controller.py", "text_done_s <= self.slo_s - menu.query_prefill_s",
             "text_done_s <= 0.0", ("tests/apps/test_kvfetch_controller.py",)),
    Mutation("kvfetch_quantiser_rounding", "KV codec quantiser rounds to nearest -> rounds down",
             "emu/apps/kvfetch/codec.py", "q = np.rint(x * (c / scales", "q = np.floor(x * (c / scales",
             ("tests/apps/test_kvfetch_codec.py::test_codec_matches_the_reference_quantiser",)),
)


def copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv*", "runs", "build", "__pycache__", "*.egg-info", ".pytest_cache",
                                    ".hypothesis")
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)


def _env() -> dict:
    """The copy sits in a temporary folder: point it at the real traces the checkout sees."""
    import os

    from emu.links.tracefile import shared_traces_dir

    env = dict(os.environ)
    traces = shared_traces_dir()
    if traces is not None:
        env["EMU_TRACES_DIR"] = str(traces)
    return env


def run_one(m: Mutation, timeout_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"emu-mut-{m.name}-") as tmp:
        root = Path(tmp) / "repo"
        copy_tree(root)
        target = root / m.path
        text = target.read_text()
        if text.count(m.old) != 1:
            return {"mutation": m.name, "mechanism": m.mechanism, "result": "stale",
                    "detail": f"snippet found {text.count(m.old)} times in {m.path}"}
        target.write_text(text.replace(m.old, m.new))
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests],
                                  cwd=root, capture_output=True, text=True, timeout=timeout_s, env=_env())
            caught = proc.returncode != 0
            last = (proc.stdout.strip().splitlines() or [""])[-1]
            if not caught and "skipped" in last and "passed" not in last:
                return {"mutation": m.name, "mechanism": m.mechanism, "result": "SKIPPED", "detail": last}
        except subprocess.TimeoutExpired:
            # a hang is not a failing assertion: reported on its own, and the run exits non-zero
            return {"mutation": m.name, "mechanism": m.mechanism, "result": "TIMEOUT",
                    "detail": f"tests still running after {timeout_s:.0f} s", "wall_s": round(timeout_s, 1)}
        return {"mutation": m.name, "mechanism": m.mechanism, "result": "caught" if caught else "SURVIVED",
                "detail": last, "wall_s": round(time.perf_counter() - start, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=None, help="run only this mutation (repeatable)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation's tests (default 900)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows = [run_one(m, args.timeout) for m in chosen]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['result']:>8}  {r['mutation']:<22} {r['mechanism']}  [{r['detail']}]")
    return 0 if all(r["result"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
