"""SwiftQueue's decision rules with stub models (emu/apps/swiftqueue/policies.py), at the policy interface:
``PredictivePolicy`` (the margin, re-prediction after a packet goes to C, the cascade gate) and ``ForkOraclePolicy``
(the queue where the frame arrives sooner). The stubs answer ``predict(batch) -> (rows, 2)`` latencies (L, C) in
seconds, so the tests do not depend on the model's input features.

The sender they decide for is a real one, from a short run on a synthetic trace written to a temporary folder (no
real trace needed).
"""
from __future__ import annotations

import numpy as np
import pytest

from emu.apps.swiftqueue.policies import ForkOraclePolicy, PerFlowPolicy, PredictivePolicy
from emu.apps.swiftqueue.predictors import BaselineTracker, Predictor
from emu.packet import ECT0, ECT1

SIZES = [1240, 1240, 1240, 700]   # one frame of four datagrams


class ConstantPredictor(Predictor):
    """The same (L, C) latency for every packet; logs the number of rows of each call."""

    name = "constant"

    def __init__(self, lat_l_s: float, lat_c_s: float) -> None:
        self.lat = (lat_l_s, lat_c_s)
        self.calls: list[int] = []

    def predict(self, batch) -> np.ndarray:
        rows = batch.query.shape[0]
        self.calls.append(rows)
        return np.tile(np.array(self.lat, dtype=np.float64), (rows, 1))


class ScriptedPredictor(Predictor):
    """Answers call k with ``script[k]`` (one (L, C) row per packet asked about); logs the rows of each call."""

    name = "scripted"

    def __init__(self, script) -> None:
        self.script = [np.asarray(s, dtype=np.float64) for s in script]
        self.calls: list[int] = []

    def predict(self, batch) -> np.ndarray:
        rows = batch.query.shape[0]
        answer = self.script[len(self.calls)]
        self.calls.append(rows)
        assert answer.shape == (rows, 2), (answer.shape, rows)
        return answer.copy()


class NeverCalled(Predictor):
    name = "never"

    def predict(self, batch) -> np.ndarray:
        raise AssertionError("the model ran on a gated frame")


class FixedTracker(BaselineTracker):
    """The real tracker (base delay, counts) with the newest and EWMA latency per queue pinned to given values."""

    def __init__(self, last, ewma) -> None:
        super().__init__()
        self.pinned = (list(last), list(ewma))

    def update(self, hist) -> None:
        super().update(hist)
        self.last, self.ewma = list(self.pinned[0]), list(self.pinned[1])


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory):
    """A synthetic Mahimahi trace: 2 s at 8 opportunities per 2 ms (48 Mbit/s) then 2 s at 1 per 2 ms (6 Mbit/s)."""
    lines = []
    for ms in range(2, 4001, 2):
        lines += [str(ms)] * (8 if ms <= 2000 else 1)
    path = tmp_path_factory.mktemp("trace") / "steps.down"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _config(trace, **kw):
    from emu.apps.swiftqueue.scenario import ScenarioConfig

    return ScenarioConfig(trace=trace, duration_s=4.0, warmup_s=1.0, **kw)


@pytest.fixture(scope="module")
def sender(small_trace):
    """The sender of a 4 s run that marked at random with probes (ACK history from both queues)."""
    from emu.apps.swiftqueue.scenario import run

    r = run(_config(small_trace), "random", seed=1)
    s = r.sender
    assert s.history.n > 100 and 0 < s.history.view()[:, 4].mean() < 1
    return s


def _decide(policy, sender, sizes=SIZES):
    sender._grow(sender.n_sent + len(sizes) + 1)
    first = sender.n_sent
    marks = policy.mark_frame(sender, sender.sim.now_s, list(sizes))
    return marks, first


# -- PredictivePolicy --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lat_l_s, lat_c_s, margin_s, expected", [
    (0.020, 0.030, 0.0, ECT1),      # L predicted faster
    (0.030, 0.025, 0.0, ECT0),      # C faster by 5 ms, no margin
    (0.030, 0.025, 0.004, ECT0),    # C faster by more than the margin
    (0.030, 0.025, 0.006, ECT1),    # within the margin: L
    (0.025, 0.025, 0.0, ECT1),      # a tie goes to L (pred_L <= pred_C + margin)
])
def test_margin_decides_between_the_predictions(sender, lat_l_s, lat_c_s, margin_s, expected):
    pred = ConstantPredictor(lat_l_s, lat_c_s)
    marks, first = _decide(PredictivePolicy(pred, margin_s=margin_s), sender)
    assert marks == [expected] * len(SIZES)
    assert np.all(sender.pred_l[first:first + 4] == lat_l_s) and np.all(sender.pred_c[first:first + 4] == lat_c_s)
    # one call for the frame; after each packet sent to C, one more for the packets after it
    assert pred.calls == ([4] if expected == ECT1 else [4, 3, 2, 1])


def test_prediction_redone_for_the_rest_after_a_c_choice(sender):
    pred = ScriptedPredictor([
        [(0.010, 0.020), (0.030, 0.020), (0.900, 0.001), (0.900, 0.001)],   # packet 0 -> L, packet 1 -> C
        [(0.010, 0.020), (0.050, 0.020)],                                    # redone for 2, 3: 2 -> L, 3 -> C
    ])
    policy = PredictivePolicy(pred, margin_s=0.0)
    marks, first = _decide(policy, sender)
    assert marks == [ECT1, ECT0, ECT1, ECT0]
    assert pred.calls == [4, 2]                 # the first answers for packets 2 and 3 were never used
    assert sender.pred_l[first:first + 4].tolist() == [0.010, 0.030, 0.010, 0.050]
    assert sender.pred_c[first:first + 4].tolist() == [0.020, 0.020, 0.020, 0.020]
    assert policy.infer_calls == 1 and policy.infer_pkts == 4


def test_no_history_means_l_without_running_the_model():
    from types import SimpleNamespace

    from emu.apps.swiftqueue.app import AckHistory

    policy = PredictivePolicy(NeverCalled())
    assert policy.mark_frame(SimpleNamespace(history=AckHistory()), 0.0, SIZES) == [ECT1] * 4


@pytest.mark.parametrize("last, ewma, gated", [
    ((0.020, 0.040), (0.020, 0.035), True),    # both C estimates > L's + 10 ms: L without the model
    ((0.020, 0.040), (0.020, 0.025), False),   # the EWMA gap is 5 ms: the model decides
    ((0.020, 0.025), (0.020, 0.040), False),   # the newest gap is 5 ms: the model decides
    ((0.040, 0.020), (0.040, 0.020), False),   # C faster: the model decides
])
def test_gate_cascade(sender, last, ewma, gated):
    pred = NeverCalled() if gated else ConstantPredictor(0.030, 0.010)   # the model says C
    policy = PredictivePolicy(pred, margin_s=0.0, gate_s=0.010)
    policy.tracker = FixedTracker(last, ewma)
    marks, _ = _decide(policy, sender)
    if gated:
        assert marks == [ECT1] * 4 and policy.gated_frames == 1 and policy.infer_calls == 0
    else:
        assert marks == [ECT0] * 4 and policy.gated_frames == 0 and pred.calls[0] == 4


def test_without_a_gate_the_model_always_decides(sender):
    pred = ConstantPredictor(0.030, 0.010)
    policy = PredictivePolicy(pred, margin_s=0.0, gate_s=None)
    policy.tracker = FixedTracker((0.020, 0.090), (0.020, 0.090))
    marks, _ = _decide(policy, sender)
    assert marks == [ECT0] * 4 and policy.gated_frames == 0


def test_margin_in_a_live_run(small_trace):
    """The rule end to end: a model that always predicts C 5 ms faster sends every media packet to C, unless the
    margin covers those 5 ms."""
    from emu.apps.swiftqueue.scenario import run, summarize

    cfg = _config(small_trace)
    to_c = summarize(run(cfg, "perflow_l4s", seed=2,
                         policy=lambda: PredictivePolicy(ConstantPredictor(0.030, 0.025), margin_s=0.0)))
    to_l = summarize(run(cfg, "perflow_l4s", seed=2,
                         policy=lambda: PredictivePolicy(ConstantPredictor(0.030, 0.025), margin_s=0.006)))
    assert to_c["l_share"] == 0.0 and to_l["l_share"] == 1.0


# -- ForkOraclePolicy --------------------------------------------------------------------------------------------------

def test_oracle_picks_the_queue_with_the_lower_measured_latency(monkeypatch):
    oracle = ForkOraclePolicy()
    with pytest.raises(RuntimeError, match="start"):
        oracle.mark_frame(None, 0.0, SIZES)
    oracle.start(object())
    lat = {}
    monkeypatch.setattr(oracle, "_try", lambda sender, now_s, sizes, ecn: lat[ecn])
    for lat_l, lat_c, mark in ((0.05, 0.04, ECT0), (0.04, 0.05, ECT1), (0.04, 0.04, ECT1)):
        lat.update({ECT1: lat_l, ECT0: lat_c})
        assert oracle.mark_frame(None, 1.0, SIZES) == [mark] * 4
    assert (oracle.l_frames, oracle.c_frames) == (2, 1)


def test_oracle_forks_measure_both_queues_and_leave_the_run_untouched(small_trace):
    """Mid-run, the oracle's two copies of the simulation: the original's clock, sender and records are unchanged,
    each copy's frame latency is at least the 15 ms one-way base delay, and ``mark_frame`` sends the frame to the
    queue whose copy delivered it sooner (so the decision equals a comparison of the two copies' results)."""
    from emu.apps.swiftqueue.scenario import build

    r = build(_config(small_trace), "oracle", seed=3)
    oracle = r.endpoint.policy
    assert isinstance(oracle, ForkOraclePolicy)
    r.sim.run(until_s=2.5)                           # into the 6 Mbit/s half of the trace
    s = r.sender
    n0, now0, delivered0 = s.n_sent, r.sim.now_s, r.sim.records.delivered_arrays()["pkt_id"].size
    s._grow(n0 + len(SIZES) + 1)
    lat_l = oracle._try(s, now0, SIZES, ECT1)
    lat_c = oracle._try(s, now0, SIZES, ECT0)
    assert (s.n_sent, r.sim.now_s) == (n0, now0)
    assert r.sim.records.delivered_arrays()["pkt_id"].size == delivered0
    assert 0.015 <= lat_l < oracle.horizon_s and 0.015 <= lat_c < oracle.horizon_s
    assert lat_l != lat_c
    forks = oracle.forks
    marks = oracle.mark_frame(s, now0, SIZES)
    assert oracle.forks == forks + 2
    assert marks == [ECT0 if lat_c < lat_l else ECT1] * 4      # deterministic copies: the same two latencies


def test_always_l_with_probes_control():
    control = PerFlowPolicy(ECT1, probes=True)
    assert control.probes and control.mark_frame(None, 0.0, SIZES) == [ECT1] * 4
    assert not PerFlowPolicy(ECT1).probes
    with pytest.raises(ValueError, match="probes"):
        PerFlowPolicy(ECT1, probes=1)
