"""Data collection: run the scenario with exploratory per-packet marking and log what the sender saw and what
each packet then experienced.

One collected run is a dict of numpy arrays:

- ``hist`` (n_acks, 7): the sender's ACK history in arrival order (``AckHistory.COLUMNS``: ACK arrival, send time,
  latency, size, queue, CE, sequence number) — the model's inputs are cut from it;
- per packet (index = sequence number): ``send_s``, ``size``, ``queue`` (1 = ECT(1)/L), ``kind`` (0 media,
  1 probe), ``pos``/``count`` (place in its frame), ``lat_s`` (one-way latency it saw, NaN if lost), ``ce``;
- optionally ``ghost_l_s``/``ghost_c_s`` (ghost-probe latencies in both queues, when ``ghosts=True``);
- ``meta``: trace, offset, seed, exploration probability, app rate, trace mean rate.

Exploration (scheme ``explore``, ``ExplorePolicy``): each packet ECT(1) with probability ``p_l``, drawn per run from
U(0.3, 0.7), plus
one probe per frame into the other queue, so both queues are sampled in every history window, in proportions that
vary between runs (as they do under a deployed policy).
"""
from __future__ import annotations

from typing import Any, Optional

from emu.apps.swiftqueue.scenario import ScenarioConfig, run


def run_arrays(r: Any, meta: Optional[dict] = None, ghosts: bool = False) -> dict:
    """The per-run arrays of a finished ``ScenarioRun`` (see the module docstring)."""
    s, rx = r.sender, r.receiver
    n = s.n_sent
    rx.grow(n)
    out = {
        "hist": s.history.view().copy(),
        "send_s": s.send_s[:n].copy(),
        "size": s.size[:n].copy(),
        "queue": s.queue[:n].copy(),
        "kind": s.kind[:n].copy(),
        "pos": s.pos[:n].copy(),
        "count": s.count[:n].copy(),
        "lat_s": rx.lat_s[:n].copy(),
        "ce": rx.ce[:n].copy(),
        "meta": dict(meta or {}),
    }
    if ghosts:
        out["ghost_l_s"] = rx.ghost_l_s[:n].copy()
        out["ghost_c_s"] = rx.ghost_c_s[:n].copy()
    return out


def collect(config: ScenarioConfig, seed: int = 0, scheme: str = "explore") -> dict:
    """Run ``config`` once with marking scheme ``scheme`` (default: exploration) and return its arrays."""
    r = run(config, scheme, seed=seed)
    meta = {"trace": str(config.trace), "trace_offset_s": config.trace_offset_s, "seed": seed,
            "duration_s": config.duration_s, "p_l": getattr(r.endpoint.policy, "p_l", None),
            "app_rate_bps": r.app_rate_bps,
            "trace_mean_bps": r.mean_rate_bps}
    return run_arrays(r, meta, ghosts=config.ghosts)


def _collect_job(job: tuple) -> dict:
    config, seed = job
    return collect(config, seed)


def collect_many(jobs: list[tuple[ScenarioConfig, int]], workers: int = 1) -> list[dict]:
    """``collect`` for each (config, seed), in order; ``workers`` > 1 uses that many processes."""
    if workers <= 1 or len(jobs) <= 1:
        return [_collect_job(j) for j in jobs]
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        return pool.map(_collect_job, jobs, chunksize=1)
