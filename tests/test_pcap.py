"""pcap capture: read back with scapy and checked against the run's own records and counters."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from emu import BernoulliLossConfig, CBRSource, ECT1, Network, RunResult, Sim, Sink
from emu.cli import main
from emu.pcap import BUFFER_BYTES, DEFAULT_SNAPLEN_BYTES, LINKTYPE_RAW, PCAP_MAGIC_NS
from emu.transport import open_stream
from tests.conftest import REPO, records_hash

import scapy.all as scapy_all  # noqa: E402  (the dev extra installs it)
IP, TCP, UDP = scapy_all.IP, scapy_all.TCP, scapy_all.UDP

RATE_BPS = 20e6
DELAY_S = 0.005
MSS = 1448


def build(seed: int = 3, loss: float = 0.01):
    """Prague (ECT(1)) and Cubic with classic ECN (ECT(0)) bulk streams plus a UDP CBR flow over a DualPI2 link
    with random loss (so ACKs carry SACK blocks)."""
    sim = Sim(seed=seed)
    net = Network(sim)
    a, b = net.host("a"), net.host("b")
    link = net.link(a, b, rate=RATE_BPS, delay=DELAY_S, queue="dualpi2",
                    loss=BernoulliLossConfig(p=loss) if loss else None,
                    reverse_queue_params={"limit_pkts": 100_000})
    net.build_routes()
    open_stream(sim, a, b, cc="prague", bulk=True, flow="prague")
    open_stream(sim, a, b, cc="cubic", ecn=True, bulk=True, flow="cubic")
    CBRSource(sim, a, "b", flow="udp", rate_bps=1e6, size_bytes=400, dport=7000, sport=7001, ecn=ECT1)
    Sink(sim, b, port=7000)
    return sim, net, link


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pcap")
    sim, net, link = build()
    egress = net.capture(link, folder / "egress.pcap")
    ingress = net.capture("a->b", folder / "ingress.pcap", point="ingress", snaplen=64)
    acks = net.capture(("b", "a"), folder / "acks.pcap")
    sim.run(until_s=1.0)
    size_before_close = (folder / "egress.pcap").stat().st_size
    for capture in (egress, ingress, acks):
        capture.close()
    read = {name: scapy_all.rdpcap(str(folder / f"{name}.pcap")) for name in ("egress", "ingress", "acks")}
    return {"sim": sim, "net": net, "link": link, "result": RunResult(sim), "read": read, "folder": folder,
            "captures": (egress, ingress, acks), "size_before_close": size_before_close}


def ecn_of(packets):
    return np.array([p[IP].tos & 3 for p in packets])


def test_file_header_is_standard_pcap(captured):
    head = (captured["folder"] / "egress.pcap").read_bytes()[:24]
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", head)
    assert (magic, major, minor, snaplen, linktype) == (PCAP_MAGIC_NS, 2, 4, DEFAULT_SNAPLEN_BYTES, LINKTYPE_RAW)


def test_counts_match_the_link_and_queue_counters(captured):
    link, read = captured["link"], captured["read"]
    stats = link.queue.stats
    assert len(read["egress"]) == link.tx_pkts == stats.dequeued_pkts > 1000
    assert len(read["ingress"]) == stats.arrived_pkts
    assert len(read["acks"]) == captured["net"].links[("b", "a")].tx_pkts
    assert [c.packets for c in captured["captures"]] == [len(read[n]) for n in ("egress", "ingress", "acks")]


def test_ecn_codepoints_match_marks_and_arrivals(captured):
    stats = captured["link"].queue.stats
    ingress, egress = ecn_of(captured["read"]["ingress"]), ecn_of(captured["read"]["egress"])
    assert [int((ingress == cp).sum()) for cp in range(4)] == stats.ecn_arrived  # before the queue: as sent
    marks = sum(stats.marks.values())
    assert marks > 0 and int((egress == 3).sum()) == marks  # after the queue: CE exactly where it marked
    assert int((ingress == 1).sum()) > 0 and int((ingress == 2).sum()) > 0


def test_order_timestamps_and_ids_match_the_delivered_records(captured):
    packets = captured["result"].packets()
    egress = captured["read"]["egress"]
    t_capture = np.array([float(p.time) for p in egress])
    assert np.all(np.diff(t_capture) >= 0)
    ids = np.array([p[IP].id for p in egress])
    sizes = np.array([p.wirelen for p in egress])
    for flow in ("prague", "cubic", "udp"):
        rows = packets[packets["flow"] == flow].sort_values("delivered_s", kind="stable")
        wanted = set(rows["pkt_id"] % 65536)
        # delivered packets of the flow, in capture order, are the delivered records in delivery order
        seen = [i for i in range(len(egress)) if ids[i] in wanted and egress[i][IP].dst == "10.0.0.2"
                and _flow_of(egress[i]) == flow]
        assert len(seen) == len(rows) > 50
        assert [int(ids[i]) for i in seen] == [int(x) for x in rows["pkt_id"] % 65536]
        # a packet leaves the queue at its capture time, then takes size*8/rate + delay to arrive
        expected = t_capture[seen] + sizes[seen] * 8 / RATE_BPS + DELAY_S
        assert np.allclose(rows["delivered_s"].to_numpy(), expected, atol=2e-9)


def _flow_of(pkt) -> str:
    if UDP in pkt:
        return "udp"
    return "prague" if pkt[IP].tos & 3 in (1, 3) and pkt[TCP].sport == 49152 else "cubic"


def test_tcp_and_udp_headers(captured):
    egress, acks = captured["read"]["egress"], captured["read"]["acks"]
    data = [p for p in egress if TCP in p]
    assert all(p[TCP].seq % MSS == 0 and p[TCP].flags == "A" for p in data)
    assert {p[TCP].sport for p in data} == {49152, 49153}
    assert max(p[TCP].seq for p in data) > 100 * MSS
    udp = [p for p in egress if UDP in p]
    assert udp and all(p[UDP].sport == 7001 and p[UDP].dport == 7000 and p[UDP].len == 380 for p in udp)
    sacked = [p for p in acks if any(name == "SAck" for name, _ in p[TCP].options)]
    assert sacked, "random loss must leave holes that ACKs report"
    for p in sacked:
        blocks = dict(p[TCP].options)["SAck"]
        assert all(b % MSS == 0 for b in blocks) and min(blocks) > p[TCP].ack
    stamps = [dict(p[TCP].options)["Timestamp"] for p in acks]
    assert all(tsecr <= tsval for tsval, tsecr in stamps)


def test_snaplen_and_wire_length(captured):
    ingress = captured["read"]["ingress"]
    assert {len(bytes(p)) for p in ingress} == {64}
    assert {p.wirelen for p in ingress} >= {1500, 400}
    assert all(p[IP].len == p.wirelen for p in ingress)
    payload = bytes(captured["read"]["egress"][0])[52:]
    assert payload and set(payload) == {0}


def test_checksums_are_valid(captured):
    for p in list(captured["read"]["acks"])[:50]:  # whole packets: ACKs are shorter than the snap length
        raw = bytes(p[IP])
        rebuilt = IP(raw)
        del rebuilt.chksum, rebuilt[TCP].chksum
        again = IP(bytes(rebuilt))
        assert (again.chksum, again[TCP].chksum) == (p[IP].chksum, p[TCP].chksum)


def test_streaming_write_and_unhooking(captured):
    # the file grew during the run: no more than one buffer of records was held in memory
    assert captured["size_before_close"] >= (captured["folder"] / "egress.pcap").stat().st_size - BUFFER_BYTES
    link = captured["link"]
    assert "dequeue" not in link.queue.__dict__ and "receive" not in link.__dict__  # closed: back to plain code


def test_capture_does_not_change_the_run(tmp_path):
    plain = build()[0]
    plain.run(until_s=0.5)
    sim, net, link = build()
    with net.capture(link, tmp_path / "x.pcap"), net.capture(link, tmp_path / "y.pcap", point="ingress"):
        sim.run(until_s=0.5)
    assert records_hash(sim) == records_hash(plain)
    again_sim, again_net, again_link = build()
    with again_net.capture(again_link, tmp_path / "z.pcap"):
        again_sim.run(until_s=0.5)
    assert (tmp_path / "x.pcap").read_bytes() == (tmp_path / "z.pcap").read_bytes()


def test_bad_arguments(tmp_path):
    sim, net, link = build()
    with pytest.raises(ValueError, match="unknown link 'a->c'; links: a->b, b->a"):
        net.capture("a->c", tmp_path / "x.pcap")
    with pytest.raises(ValueError, match="point: unknown 'middle'; valid: egress, ingress"):
        net.capture(link, tmp_path / "x.pcap", point="middle")
    with pytest.raises(ValueError, match="snaplen: must be an integer"):
        net.capture(link, tmp_path / "x.pcap", snaplen=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.capture(link, tmp_path / "missing" / "x.pcap")


def test_scenario_capture_table_and_cli_flag(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text((REPO / "examples" / "dumbbell_codel.toml").read_text()
                        + '\n[[capture]]\nlink = "right->d0"\npoint = "ingress"\nsnaplen = 60\n')
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "--duration", "0.5s", "--no-plots", "--no-progress",
                 "--pcap", "left->right"]) == 0
    meta = json.loads((out / "summary.json").read_text())["meta"]
    files = {c["file"]: c for c in meta["captures"]}
    assert set(files) == {"right-d0.ingress.pcap", "left-right.egress.pcap"}
    for name, capture in files.items():
        assert len(scapy_all.rdpcap(str(out / name))) == capture["packets"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftover temporary folder
    assert main(["run", str(scenario), "--out", str(tmp_path / "bad"), "--pcap", "x->y"]) == 2
    for bad in ('point = "middle"', 'snaplen = 0', 'file = "summary.json"', 'file = "../x.pcap"', 'oops = 1'):
        scenario.write_text((REPO / "examples" / "dumbbell_codel.toml").read_text()
                            + f'\n[[capture]]\nlink = "left->right"\n{bad}\n')
        assert main(["run", str(scenario), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
