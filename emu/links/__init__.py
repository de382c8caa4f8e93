"""Links: constant-rate and trace-driven serialisers, with loss, propagation and jitter stages."""
from emu.links.impairments import BernoulliLossConfig, GilbertElliottLossConfig, JitterConfig
from emu.links.link import Link, LinkConfig

__all__ = ["Link", "LinkConfig", "BernoulliLossConfig", "GilbertElliottLossConfig", "JitterConfig"]
