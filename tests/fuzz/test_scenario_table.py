"""Bad scenario tables through the Python API (``Scenario.from_dict``): each fails with a ``ScenarioError`` (a
ValueError) that names the file and the field, before anything runs, and never hangs."""
from __future__ import annotations

import copy

import pytest

from emu.scenario import Scenario, ScenarioError
from tests.fuzz.guard import no_hang

SOURCE = "bad.toml"
BASE = {
    "duration": "1s",
    "host": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
    "router": [{"name": "r"}],
    "link": [{"from": "a", "to": "r", "rate": "10Mbps", "delay": "1ms"},
             {"from": "r", "to": "b", "rate": "10Mbps", "delay": "1ms"}],
    "flow": [{"name": "f", "type": "cbr", "src": "a", "dst": "b", "rate": "1Mbps"},
             {"name": "t", "type": "stream", "src": "a", "dst": "b", "size": "10KB"}],
}
DEL = object()


def at(path, value):
    def mutate(raw):
        cur = raw
        for key in path[:-1]:
            cur = cur[key]
        if value is DEL:
            del cur[path[-1]]
        else:
            cur[path[-1]] = value
    return mutate


def add_link(**spec):
    return lambda raw: raw["link"].append(spec)


INF, NAN = float("inf"), float("nan")
# (id, mutation, text the error must contain: the field and, for numbers, the allowed range)
CASES = [
    # non-finite and absurd numbers
    ("duration-inf", at(["duration"], INF), "duration"),
    ("duration-nan", at(["duration"], NAN), "duration"),
    ("duration-1e12s", at(["duration"], "1e12s"), "duration: must be > 0 and <= 1e+07 s"),
    ("duration-20-digits", at(["duration"], 10**20), "duration: must be > 0 and <= 1e+07 s"),
    ("duration-400-digits", at(["duration"], 10**400), "duration"),
    ("duration-1e400-string", at(["duration"], "1e400s"), "duration"),
    ("duration-zero", at(["duration"], "0s"), "duration: must be > 0"),
    ("duration-negative", at(["duration"], -1), "duration"),
    ("duration-bool", at(["duration"], True), "duration"),
    ("duration-list", at(["duration"], [1]), "duration"),
    ("duration-unit", at(["duration"], "10 parsecs"), "duration"),
    ("flow-rate-inf", at(["flow", 0, "rate"], INF), "flow[0].rate"),
    ("flow-rate-1e308", at(["flow", 0, "rate"], 1e308), "flow[0].rate: must be > 0 and <= 1e+12 bit/s"),
    ("flow-rate-zero", at(["flow", 0, "rate"], 0), "flow[0].rate"),
    ("flow-rate-negative", at(["flow", 0, "rate"], "-1Mbps"), "flow[0].rate"),
    ("flow-size-inf", at(["flow", 0, "size"], INF), "flow[0].size"),
    ("flow-size-huge", at(["flow", 0, "size"], 10**12), "flow[0].size: must be >= 1 and <= 65535 bytes"),
    ("flow-size-fraction", at(["flow", 0, "size"], 1500.5), "flow[0].size"),
    ("flow-size-zero", at(["flow", 0, "size"], 0), "flow[0].size"),
    ("stream-size-inf", at(["flow", 1, "size"], INF), "flow[1].size"),
    ("stream-size-huge", at(["flow", 1, "size"], "1e30B"), "flow[1].size"),
    ("flow-start-inf", at(["flow", 0, "start"], INF), "flow[0].start"),
    ("flow-start-negative", at(["flow", 0, "start"], -1), "flow[0].start"),
    ("flow-start-after-end", at(["flow", 0, "start"], "2s"), "flow[0].start: must be before the end of the run"),
    ("flow-start-at-end", at(["flow", 0, "start"], "1s"), "flow[0].start: must be before the end of the run"),
    ("stream-start-after-end", at(["flow", 1, "start"], 5), "flow[1].start: must be before the end of the run"),
    ("flow-stop-inf", at(["flow", 0, "stop"], INF), "flow[0].stop"),
    ("flow-stop-before-start", at(["flow", 0, "stop"], 0), "stop_s"),
    ("onoff-mean-inf", lambda r: r["flow"].__setitem__(0, {**r["flow"][0], "type": "onoff", "on_mean": INF}),
     "flow[0].on_mean"),
    ("bulk-total-inf", lambda r: r["flow"].__setitem__(0, {**r["flow"][0], "type": "bulk", "total": INF}),
     "flow[0].total"),
    ("link-rate-inf", at(["link", 0, "rate"], INF), "rate"),
    ("link-rate-huge", at(["link", 0, "rate"], "1e15Gbps"), "rate: must be > 0 and <= 1e+12 bit/s"),
    ("link-delay-inf", at(["link", 0, "delay"], INF), "delay"),
    ("link-delay-1e9", at(["link", 0, "delay"], 1e9), "delay: must be >= 0 and <= 3600 s"),
    ("link-delay-negative", at(["link", 0, "delay"], "-5ms"), "delay"),
    ("link-mtu-huge", at(["link", 0, "mtu"], 10**9), "mtu_bytes"),
    ("jitter-mean-inf", at(["link", 0, "jitter"], {"mean": INF}), "jitter.mean"),
    ("loss-p-2", at(["link", 0, "loss"], {"p": 2}), "loss.p"),
    ("loss-p-nan", at(["link", 0, "loss"], {"p": NAN}), "loss.p"),
    ("loss-unknown-key", at(["link", 0, "loss"], {"q": 0.1}), "link[0].loss: unknown key(s) ['q']"),
    ("queue-limit-huge", at(["link", 0, "queue_params"], {"limit_pkts": 10**20}), "limit_pkts"),
    ("codel-target-inf", lambda r: r["link"][0].update(queue="codel", queue_params={"target_s": INF}), "target_s"),
    ("pie-target-inf", lambda r: r["link"][0].update(queue="pie", queue_params={"target_s": INF}), "target_s"),
    ("seed-float", at(["seed"], 1.5), "seed"),
    ("seed-negative", at(["seed"], -1), "seed"),
    # wrong types: booleans are booleans, names are strings, tables are tables
    ("reorder-string", at(["link", 0, "jitter"], {"mean": "1ms", "reorder": "no"}), "reorder: must be true or false"),
    ("reorder-int", at(["link", 0, "jitter"], {"mean": "1ms", "reorder": 1}), "reorder: must be true or false"),
    ("limit-pkts-true", at(["link", 0, "queue_params"], {"limit_pkts": True}), "limit_pkts"),
    ("limit-pkts-float", at(["link", 0, "queue_params"], {"limit_pkts": 10.5}), "limit_pkts"),
    ("queue-list", at(["link", 0, "queue"], ["codel"]), "queue: must be a queue name"),
    ("queue-unknown", at(["link", 0, "queue"], "fifo"), "fifo"),
    ("queue-params-string", at(["link", 0, "queue_params"], "fast"), "queue_params: must be a table"),
    ("queue-params-unknown", at(["link", 0, "queue_params"], {"speed": 1}), "speed"),
    ("duplex-string", at(["link", 0, "duplex"], "no"), "duplex: must be true or false"),
    ("from-int", at(["link", 0, "from"], 5), "link[0].from: must be a node name"),
    ("to-list", at(["link", 0, "to"], ["r"]), "link[0].to: must be a node name"),
    ("from-unknown", at(["link", 0, "from"], "zz"), "unknown node 'zz'"),
    ("flow-string", at(["flow"], "abc"), "flow: expected an array of tables"),
    ("flow-entry-string", at(["flow", 0], "abc"), "flow[0]: expected a table"),
    ("flow-name-int", at(["flow", 0, "name"], 7), "flow[0].name"),
    ("flow-src-int", at(["flow", 0, "src"], 5), "flow[0].src: unknown host 5"),
    ("flow-dst-list", at(["flow", 0, "dst"], ["b"]), "flow[0].dst: unknown host ['b']"),
    ("flow-type-unknown", at(["flow", 0, "type"], "tcp"), "flow[0].type"),
    ("flow-ecn-bool", at(["flow", 0, "ecn"], True), "flow[0].ecn"),
    ("stream-ecn-string", at(["flow", 1, "ecn"], "yes"), "flow[1].ecn"),
    ("stream-cc-unknown", at(["flow", 1, "cc"], "bbr9"), "flow[1].cc"),
    ("stream-cc-params-string", at(["flow", 1, "cc_params"], "fast"), "flow[1].cc_params"),
    ("host-name-int", at(["host", 0, "name"], 7), "host[0].name: must be a non-empty string"),
    ("host-name-empty", at(["host", 0, "name"], ""), "host[0].name"),
    ("host-table-string", at(["host"], "a"), "host: expected an array of tables"),
    ("router-name-list", at(["router", 0, "name"], ["r"]), "router[0].name"),
    ("name-int", at(["name"], 5), "name: must be a string"),
    ("description-list", at(["description"], [1]), "description: must be a string"),
    ("record-unknown", at(["record"], "all"), "record"),
    ("timeseries-int", at(["timeseries"], 5), "timeseries"),
    ("randomize-jitter-inf", at(["randomize"], {"start_jitter": INF}), "start_jitter"),
    ("randomize-offset-string", at(["randomize"], {"trace_offset": "yes"}), "trace_offset"),
    ("unknown-top-key", at(["durations"], "1s"), "unknown key(s) ['durations']"),
    ("capture-unknown-link", at(["capture"], [{"link": "x->y"}]), "capture[0].link"),
    ("capture-snaplen-inf", at(["capture"], [{"link": "a->r", "snaplen": INF}]), "snaplen"),
    # topology: self-links, unreachable destinations
    ("self-link", add_link(**{"from": "c", "to": "c", "rate": "1Mbps"}), "a link must join two different nodes"),
    ("unreachable-host", at(["flow", 0, "dst"], "c"), "no route from 'a' to 'c'"),
    ("one-way-link-no-return", lambda r: r["link"][1].update(duplex=False), "no route from 'b' to 'a'"),
    ("topology-pairs-zero", lambda r: _topology(r, pairs=0), "pairs"),
    ("topology-pairs-huge", lambda r: _topology(r, pairs=10**9), "pairs"),
    ("topology-pairs-bool", lambda r: _topology(r, pairs=True), "pairs"),
    ("topology-rate-inf", lambda r: _topology(r, bottleneck_rate=INF), "bottleneck_rate"),
    ("topology-queue-list", lambda r: _topology(r, queue=["codel"]), "queue"),
    ("topology-queue-params-string", lambda r: _topology(r, queue_params="fast"), "queue_params"),
    ("topology-kind-unknown", lambda r: _topology(r, kind="star"), "topology.kind"),
    ("topology-trace-missing", lambda r: _topology(r, trace="no/such.trace"), "no/such.trace"),
    ("access-rtt-inf", lambda r: _topology(r, kind="access_bottleneck", rate="10Mbps", rtt=INF), "rtt"),
    ("chain-routers-huge", lambda r: _topology(r, kind="chain", routers=10**9), "routers"),
]


def _topology(raw, **topo):
    for key in ("host", "router", "link"):
        raw.pop(key)
    raw["topology"] = {"kind": "dumbbell", "pairs": 2, **topo}
    kind = raw["topology"]["kind"]
    src, dst = ("src", "dst") if kind == "chain" else ("s0", "d0")
    for flow in raw["flow"]:
        flow.update(src=src, dst=dst)


@pytest.mark.parametrize("case_id,mutate,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_table_fails_naming_the_field(case_id, mutate, expected):
    raw = copy.deepcopy(BASE)
    mutate(raw)
    with no_hang(case_id), pytest.raises(ScenarioError) as info:
        Scenario.from_dict(raw, source=SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_the_base_table_is_valid():
    """The cases above fail because of their one change, not because the base is broken."""
    Scenario.from_dict(copy.deepcopy(BASE), source=SOURCE)


def test_sim_run_refuses_infinite_and_absurd_ends():
    from emu.sim import Sim

    for until in (float("inf"), float("nan"), 1e12, 10**400, -1, 0, True, "5"):
        with pytest.raises(ValueError, match="until_s"):
            Sim(0).run(until)
