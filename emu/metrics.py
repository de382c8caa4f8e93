"""Per-packet records in flat typed arrays, and streaming per-flow summaries for very long runs.

``Recorder(mode="full")`` appends one row per delivered and per dropped packet to ``array.array`` columns
(8 bytes a field, no per-packet objects) and exposes them as numpy arrays without copying.
``Recorder(mode="summary")`` buffers rows in fixed-size chunks and folds each full chunk into per-flow
histograms (log-spaced delay bins, 0.5 % wide) and per-flow byte counts per ``bin_s``, so memory stays flat
however long the run.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 1 << 16
# Delay histogram bins (summary mode): log-spaced from 1 us to 1000 s, ~0.5 % relative width.
_HIST_LO_S = 1e-6
_HIST_HI_S = 1e3
_HIST_BINS = 4200
_HIST_EDGES_S = np.concatenate(([0.0], np.geomspace(_HIST_LO_S, _HIST_HI_S, _HIST_BINS)))


@dataclass
class FlowCounters:
    sent_pkts: int = 0
    sent_bytes: int = 0


_NO_COUNTS = np.zeros(_HIST_BINS + 1, dtype=np.int64)
_NO_COUNTS.setflags(write=False)


class _FlowHist:
    """Summary-mode state for one flow."""

    __slots__ = ("delay_counts", "qdelay_counts", "bytes_per_bin", "delivered_pkts", "delivered_bytes",
                 "delay_sum_s", "qdelay_sum_s", "delay_max_s", "first_s", "last_s")

    def __init__(self) -> None:
        # A flow's own histograms (67 KB) are made at its first delivery; until then it shares a read-only zero one,
        # so that a run with many flows, or in "full" mode (which never fills them), does not pay for them.
        self.delay_counts = _NO_COUNTS
        self.qdelay_counts = _NO_COUNTS
        self.bytes_per_bin = np.zeros(0, dtype=np.int64)
        self.delivered_pkts = 0
        self.delivered_bytes = 0
        self.delay_sum_s = 0.0
        self.qdelay_sum_s = 0.0
        self.delay_max_s = 0.0
        self.first_s = np.inf
        self.last_s = -np.inf


def hist_quantile_s(counts: np.ndarray, q: float) -> float:
    """Quantile ``q`` in [0, 1] of a summary-mode delay histogram (upper edge of the bin reached)."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    idx = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    idx = min(idx, len(_HIST_EDGES_S) - 1)
    return float(_HIST_EDGES_S[idx])


class Recorder:
    """Collects what happened to packets. Elements call ``sent``, ``delivered`` and ``dropped``."""

    def __init__(self, mode: str = "full", bin_s: float = 0.1) -> None:
        if mode not in ("full", "summary"):
            raise ValueError(f"record: must be 'full' or 'summary', got {mode!r}")
        if not bin_s > 0:
            raise ValueError(f"bin_s: must be > 0, got {bin_s!r}")
        self.mode = mode
        self._summary = mode == "summary"
        self.bin_s = bin_s
        self.flow_names: list[str] = []
        self._flow_ids: dict[str, int] = {}
        self.flows: list[FlowCounters] = []
        self.where_names: list[str] = []
        self._where_ids: dict[str, int] = {}
        self.reason_names: list[str] = []
        self._reason_ids: dict[str, int] = {}
        # delivered rows
        self.d_flow = array("i")
        self.d_pkt = array("q")
        self.d_size = array("i")
        self.d_created = array("d")
        self.d_arrived = array("d")
        self.d_qdelay = array("d")
        # dropped rows
        self.x_flow = array("i")
        self.x_pkt = array("q")
        self.x_size = array("i")
        self.x_time = array("d")
        self.x_where = array("i")
        self.x_reason = array("i")
        self._hists: list[_FlowHist] = []
        self.delivered_total_pkts = 0
        self.dropped_total_pkts = 0
        self._folded_drops: dict[tuple[int, int, int], int] = {}

    # -- names --------------------------------------------------------------------------------------------------

    def flow_id(self, name: str) -> int:
        fid = self._flow_ids.get(name)
        if fid is None:
            fid = len(self.flow_names)
            self._flow_ids[name] = fid
            self.flow_names.append(name)
            self.flows.append(FlowCounters())
            self._hists.append(_FlowHist())
        return fid

    def where_id(self, name: str) -> int:
        wid = self._where_ids.get(name)
        if wid is None:
            wid = len(self.where_names)
            self._where_ids[name] = wid
            self.where_names.append(name)
        return wid

    def reason_id(self, name: str) -> int:
        rid = self._reason_ids.get(name)
        if rid is None:
            rid = len(self.reason_names)
            self._reason_ids[name] = rid
            self.reason_names.append(name)
        return rid

    # -- hot path -----------------------------------------------------------------------------------------------

    def sent(self, flow_id: int, size_bytes: int) -> None:
        counters = self.flows[flow_id]
        counters.sent_pkts += 1
        counters.sent_bytes += size_bytes

    def delivered(self, pkt, now_s: float) -> None:
        self.d_flow.append(pkt.flow_id)
        self.d_pkt.append(pkt.pkt_id)
        self.d_size.append(pkt.size_bytes)
        self.d_created.append(pkt.created_s)
        self.d_arrived.append(now_s)
        self.d_qdelay.append(pkt.qdelay_s)
        self.delivered_total_pkts += 1
        if self._summary and len(self.d_flow) >= CHUNK_ROWS:
            self._fold_delivered()

    def dropped(self, pkt, where_id: int, reason: str, now_s: float) -> None:
        self.x_flow.append(pkt.flow_id)
        self.x_pkt.append(pkt.pkt_id)
        self.x_size.append(pkt.size_bytes)
        self.x_time.append(now_s)
        self.x_where.append(where_id)
        self.x_reason.append(self.reason_id(reason))
        self.dropped_total_pkts += 1
        if self._summary and len(self.x_flow) >= CHUNK_ROWS:
            self._fold_dropped()

    # -- summary mode folding -------------------------------------------------------------------------------------

    def _fold_delivered(self) -> None:
        if not len(self.d_flow):
            return
        # Copies, not views: the arrays are emptied below, which a live buffer view would forbid.
        flow = np.frombuffer(self.d_flow, dtype=np.int32).copy()
        size = np.frombuffer(self.d_size, dtype=np.int32).astype(np.int64)
        arrived = np.frombuffer(self.d_arrived, dtype=np.float64).copy()
        delay = arrived - np.frombuffer(self.d_created, dtype=np.float64)
        qdelay = np.frombuffer(self.d_qdelay, dtype=np.float64).copy()
        dbin = np.searchsorted(_HIST_EDGES_S, delay, side="right") - 1
        qbin = np.searchsorted(_HIST_EDGES_S, qdelay, side="right") - 1
        tbin = (arrived / self.bin_s).astype(np.int64)
        for fid in np.unique(flow):
            sel = flow == fid
            h = self._hists[int(fid)]
            if h.delay_counts is _NO_COUNTS:
                h.delay_counts = np.zeros(_HIST_BINS + 1, dtype=np.int64)
                h.qdelay_counts = np.zeros(_HIST_BINS + 1, dtype=np.int64)
            h.delay_counts += np.bincount(dbin[sel], minlength=_HIST_BINS + 1)[: _HIST_BINS + 1]
            h.qdelay_counts += np.bincount(qbin[sel], minlength=_HIST_BINS + 1)[: _HIST_BINS + 1]
            per_bin = np.bincount(tbin[sel], weights=size[sel]).astype(np.int64)
            if len(per_bin) > len(h.bytes_per_bin):
                grown = np.zeros(len(per_bin), dtype=np.int64)
                grown[: len(h.bytes_per_bin)] = h.bytes_per_bin
                h.bytes_per_bin = grown
            h.bytes_per_bin[: len(per_bin)] += per_bin
            h.delivered_pkts += int(sel.sum())
            h.delivered_bytes += int(size[sel].sum())
            h.delay_sum_s += float(delay[sel].sum())
            h.qdelay_sum_s += float(qdelay[sel].sum())
            h.delay_max_s = max(h.delay_max_s, float(delay[sel].max()))
            h.first_s = min(h.first_s, float(arrived[sel].min()))
            h.last_s = max(h.last_s, float(arrived[sel].max()))
        for column in (self.d_flow, self.d_pkt, self.d_size, self.d_created, self.d_arrived, self.d_qdelay):
            del column[:]

    def _fold_dropped(self) -> None:
        for key in zip(self.x_flow, self.x_where, self.x_reason):
            self._folded_drops[key] = self._folded_drops.get(key, 0) + 1
        for column in (self.x_flow, self.x_pkt, self.x_size, self.x_time, self.x_where, self.x_reason):
            del column[:]

    def finish(self) -> None:
        """Fold what is buffered (summary mode); a no-op in full mode."""
        if self.mode == "summary":
            self._fold_delivered()
            self._fold_dropped()

    # -- views ----------------------------------------------------------------------------------------------------

    def delivered_arrays(self) -> dict[str, np.ndarray]:
        """Zero-copy numpy views of the delivered rows (full mode)."""
        return {
            "flow_id": np.frombuffer(self.d_flow, dtype=np.int32),
            "pkt_id": np.frombuffer(self.d_pkt, dtype=np.int64),
            "size_bytes": np.frombuffer(self.d_size, dtype=np.int32),
            "created_s": np.frombuffer(self.d_created, dtype=np.float64),
            "delivered_s": np.frombuffer(self.d_arrived, dtype=np.float64),
            "qdelay_s": np.frombuffer(self.d_qdelay, dtype=np.float64),
        }

    def dropped_arrays(self) -> dict[str, np.ndarray]:
        return {
            "flow_id": np.frombuffer(self.x_flow, dtype=np.int32),
            "pkt_id": np.frombuffer(self.x_pkt, dtype=np.int64),
            "size_bytes": np.frombuffer(self.x_size, dtype=np.int32),
            "t_s": np.frombuffer(self.x_time, dtype=np.float64),
            "where_id": np.frombuffer(self.x_where, dtype=np.int32),
            "reason_id": np.frombuffer(self.x_reason, dtype=np.int32),
        }

    def flow_hist(self, flow_id: int) -> _FlowHist:
        return self._hists[flow_id]

    def folded_drop_counts(self) -> dict[tuple[int, int, int], int]:
        return dict(self._folded_drops)
