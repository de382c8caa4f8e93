"""``bulk``: a reliable TCP-like transfer as an app (the scheme is the congestion controller).

The traffic source that fits the App contract: one ``emu.transport.stream`` connection from ``src`` to ``dst``,
either unlimited (a backlogged flow until ``stop_s``) or ``size_bytes`` long (then ``fct_s`` is its flow
completion time). Flows are named ``<name>`` (data) and ``<name>.ack``. An unlimited transfer is background
traffic: it counts as ``done`` from its start, so ``run_until_done`` never waits for it.

    install(net, "bulk", src="s0", dst="d0", scheme="prague", size_bytes=20_000_000)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from emu.apps.base import AppSpec, Endpoint, InstallContext
from emu.validate import check_int, check_optional_number

SCHEMES = ("cubic", "reno", "prague")


@dataclass(frozen=True, kw_only=True)
class BulkConfig:
    size_bytes: Optional[int] = None   # None: unlimited (backlogged until stop_s)
    stop_s: Optional[float] = None     # an unlimited sender stops adding data here (None: never)

    def __post_init__(self) -> None:
        if self.size_bytes is not None:
            check_int("size_bytes", self.size_bytes, lo=1, hi=10**13)
        check_optional_number("stop_s", self.stop_s, lo=0, hi=1e7, lo_open=True)
        if self.size_bytes is not None and self.stop_s is not None:
            raise ValueError("stop_s: applies to unlimited transfers only (size_bytes is set)")


class BulkTransfer(Endpoint):
    app = "bulk"

    def __init__(self, ctx: InstallContext) -> None:
        super().__init__(ctx)
        self.sender: Any = None
        self.received_bytes = 0
        self.finished_s = math.nan

    def start(self) -> None:
        from emu.transport.stream import open_stream

        cfg: BulkConfig = self.config
        unlimited = cfg.size_bytes is None
        if cfg.stop_s is not None and cfg.stop_s <= self.start_s:
            raise ValueError(f"app {self.name!r}: stop_s {cfg.stop_s} must be after start_s {self.start_s}")
        self.sender, _ = open_stream(self.sim, self.ctx.src, self.ctx.dst, cc=self.scheme, flow=self.name,
                                     bulk=unlimited, start_s=self.start_s, stop_s=cfg.stop_s,
                                     on_data=self._on_data)
        if not unlimited:
            self.sender.write(cfg.size_bytes)

    def _on_data(self, total_bytes: int, now_s: float) -> None:
        self.received_bytes = total_bytes
        size = self.config.size_bytes
        if size is not None and total_bytes >= size and math.isnan(self.finished_s):
            self.finished_s = now_s

    @property
    def done(self) -> bool:
        if self.config.size_bytes is None:
            return self.sim.now_s >= self.start_s
        return not math.isnan(self.finished_s)

    def result(self) -> dict[str, Any]:
        end_s = self.finished_s if not math.isnan(self.finished_s) else self.sim.now_s
        active_s = end_s - self.start_s
        s = self.sender
        return {
            "received_bytes": int(self.received_bytes),
            "goodput_bps": self.received_bytes * 8.0 / active_s if active_s > 0 else math.nan,
            "fct_s": self.finished_s - self.start_s if not math.isnan(self.finished_s) else math.nan,
            "retransmitted_pkts": int(s.retransmitted_pkts),
            "srtt_s": float(s.srtt_s) if s.srtt_s is not None else math.nan,
        }


def install(ctx: InstallContext) -> BulkTransfer:
    return BulkTransfer(ctx)


SPEC = AppSpec(
    name="bulk",
    summary="a reliable TCP-like transfer (scheme = congestion control), unlimited or of size_bytes",
    config=BulkConfig,
    schemes=SCHEMES,
    install=install,
    metrics=("goodput_bps", "fct_s"),
)
