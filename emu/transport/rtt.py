"""RFC 6298 round-trip estimation: SRTT, RTTVAR and the retransmission timeout (one implementation).

``rfc6298_update(srtt_s, rttvar_s, rtt_s)`` is the §2.2/§2.3 update as a pure function (NaN SRTT = no sample
yet); ``RtoEstimator`` keeps the state with a floor, a ceiling and exponential back-off (§5.5) for transports and
apps that run their own timers.
"""
from __future__ import annotations

import math

ALPHA = 0.125   # RFC 6298 §2.3: alpha = 1/8
BETA = 0.25     # RFC 6298 §2.3: beta = 1/4
K = 4           # RFC 6298 §2.2


def rfc6298_update(srtt_s: float, rttvar_s: float, rtt_s: float) -> tuple[float, float]:
    """New ``(srtt_s, rttvar_s)`` after one measurement; the first one sets SRTT = R, RTTVAR = R/2 (§2.2)."""
    if math.isnan(srtt_s):
        return rtt_s, rtt_s / 2
    rttvar_s = (1 - BETA) * rttvar_s + BETA * abs(srtt_s - rtt_s)
    return (1 - ALPHA) * srtt_s + ALPHA * rtt_s, rttvar_s


class RtoEstimator:
    """SRTT/RTTVAR and RTO = max(min_rto_s, SRTT + K·RTTVAR) capped at ``max_rto_s``; ``timeout_s`` applies the
    back-off, which a new sample resets (RFC 6298 §5.7)."""

    def __init__(self, min_rto_s: float = 0.2, initial_rto_s: float = 1.0, max_rto_s: float = 60.0) -> None:
        self.min_rto_s, self.max_rto_s = min_rto_s, max_rto_s
        self.srtt_s = math.nan
        self.rttvar_s = math.nan
        self.rto_s = initial_rto_s
        self.backoff = 1

    def sample(self, rtt_s: float) -> None:
        self.srtt_s, self.rttvar_s = rfc6298_update(self.srtt_s, self.rttvar_s, rtt_s)
        self.rto_s = min(self.max_rto_s, max(self.min_rto_s, self.srtt_s + K * self.rttvar_s))
        self.backoff = 1

    @property
    def timeout_s(self) -> float:
        return min(self.max_rto_s, self.rto_s * self.backoff)
