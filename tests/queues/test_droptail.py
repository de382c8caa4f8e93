"""DropTail: exact limits (packets and bytes), counter conservation, config validation."""
from __future__ import annotations

import pytest

from emu.queues import DropTailConfig, DropTailQueue, make_queue
from tests.queues.helpers import assert_conserved, pkt


def test_limit_one_admits_exactly_one_packet_into_empty_queue():
    # ns.py's DropTail drops when len + 1 >= limit, so limit 1 admits nothing; here limit N holds exactly N.
    q = DropTailQueue(limit_pkts=1)
    assert q.enqueue(pkt(0), 0.0) is True
    assert len(q) == 1
    assert q.enqueue(pkt(1), 0.0) is False
    assert q.stats.drops == {"overflow": 1}
    out = q.dequeue(0.001)
    assert out is not None and out.pkt_id == 0
    assert q.enqueue(pkt(2), 0.002) is True
    assert_conserved(q)


@pytest.mark.parametrize("limit", [1, 2, 7, 100])
def test_packet_limit_holds_exactly_limit(limit):
    q = DropTailQueue(limit_pkts=limit)
    results = [q.enqueue(pkt(i), 0.0) for i in range(limit + 5)]
    assert results == [True] * limit + [False] * 5
    assert q.len_pkts == limit
    assert q.stats.dropped_at_enqueue_pkts == 5
    assert_conserved(q)


def test_byte_limit_admits_a_packet_only_if_it_fits():
    q = DropTailQueue(limit_pkts=None, limit_bytes=3000)
    assert q.enqueue(pkt(0, 1000), 0.0)
    assert q.enqueue(pkt(1, 1500), 0.0)  # 2500
    assert not q.enqueue(pkt(2, 600), 0.0)  # would be 3100
    assert q.enqueue(pkt(3, 500), 0.0)  # exactly 3000
    assert not q.enqueue(pkt(4, 1), 0.0)
    assert q.len_bytes == 3000 and q.len_pkts == 3
    q.dequeue(0.0)
    assert q.len_bytes == 2000
    assert q.enqueue(pkt(5, 1000), 0.0)
    assert q.stats.drops == {"overflow": 2}
    assert_conserved(q)


def test_both_limits_apply():
    q = DropTailQueue(limit_pkts=2, limit_bytes=10_000)
    assert q.enqueue(pkt(0, 100), 0.0) and q.enqueue(pkt(1, 100), 0.0)
    assert not q.enqueue(pkt(2, 100), 0.0)  # packet limit, although bytes fit


def test_fifo_order_and_sojourn_accounting():
    q = DropTailQueue(limit_pkts=10)
    for i in range(3):
        q.enqueue(pkt(i), 0.1 * i)
    assert q.head_size_bytes() == 1500
    got = [q.dequeue(1.0) for _ in range(3)]
    assert [p.pkt_id for p in got] == [0, 1, 2]
    assert [round(p.qdelay_s, 9) for p in got] == [1.0, 0.9, 0.8]
    assert q.dequeue(1.0) is None
    assert q.head_size_bytes() == 0
    assert q.stats.dequeued_bytes == 4500


def test_counters_conserved_under_random_load():
    import numpy as np

    rng = np.random.default_rng(1)
    q = DropTailQueue(limit_pkts=20, limit_bytes=20_000)
    t = 0.0
    for i in range(5000):
        t += float(rng.exponential(0.001))
        if rng.random() < 0.6:
            q.enqueue(pkt(i, int(rng.integers(40, 1501))), t)
        else:
            q.dequeue(t)
        assert_conserved(q)
    assert q.stats.dropped_at_enqueue_pkts > 0
    assert q.stats.dropped_in_queue_pkts == 0


def test_unlimited_queue():
    q = DropTailQueue(limit_pkts=None, limit_bytes=None)
    for i in range(5000):
        assert q.enqueue(pkt(i), 0.0)
    assert len(q) == 5000


def test_make_queue_builds_droptail():
    q = make_queue("droptail", limit_pkts=3)
    assert isinstance(q, DropTailQueue) and q.config.limit_pkts == 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"limit_pkts": 0}, "limit_pkts"),
        ({"limit_pkts": -3}, "limit_pkts"),
        ({"limit_pkts": 2.5}, "limit_pkts"),
        ({"limit_bytes": 0}, "limit_bytes"),
        ({"limit_bytes": "big"}, "limit_bytes"),
    ],
)
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DropTailConfig(**kwargs)
    with pytest.raises(ValueError, match=field):
        make_queue("droptail", **kwargs)


def test_unknown_field_lists_valid_ones():
    with pytest.raises(ValueError, match="limit_pkts"):
        make_queue("droptail", limt_pkts=3)
