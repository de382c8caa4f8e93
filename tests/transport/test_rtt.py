"""RFC 6298 estimator: literal values from the RFC's formulas."""
import math

from emu.transport.rtt import RtoEstimator, rfc6298_update


def test_first_and_second_sample_follow_rfc6298():
    srtt, var = rfc6298_update(math.nan, math.nan, 0.100)
    assert (srtt, var) == (0.100, 0.050)                      # §2.2: SRTT = R, RTTVAR = R/2
    srtt, var = rfc6298_update(srtt, var, 0.200)
    assert math.isclose(var, 0.75 * 0.050 + 0.25 * 0.100)     # §2.3, beta = 1/4
    assert math.isclose(srtt, 0.875 * 0.100 + 0.125 * 0.200)  # alpha = 1/8


def test_rto_floor_ceiling_and_backoff():
    est = RtoEstimator(min_rto_s=0.2, max_rto_s=1.0)
    est.sample(0.010)
    assert est.rto_s == 0.2                                    # 0.01 + 4 * 0.005 < floor
    est.backoff = 8
    assert est.timeout_s == 1.0                                # capped
    est.sample(0.010)
    assert est.backoff == 1                                    # a new sample resets the back-off (§5.7)
