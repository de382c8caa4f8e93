"""Links: constant-rate and trace-driven serialisers, with loss, propagation and jitter stages."""
from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig, JitterConfig
from emu.links.link import Link, LinkConfig
from emu.links.schedule import CapacitySchedule, OpportunitySchedule, RateSchedule, rotate_schedule
from emu.links.trace_link import TraceLink, TraceLinkConfig
from emu.links.tracefile import TraceFormatError, load_trace, trace_stats

__all__ = ["Link", "LinkConfig", "BernoulliLossConfig", "GilbertElliottLossConfig", "JitterConfig", "TraceLink",
           "TraceLinkConfig", "CapacitySchedule", "OpportunitySchedule", "RateSchedule", "TraceFormatError",
           "load_trace", "trace_stats", "rotate_schedule"]
