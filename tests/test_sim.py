import pytest

from emu.sim import Sim


def test_rng_streams_are_stable_and_independent():
    a, b = Sim(seed=7), Sim(seed=7)
    assert a.rng("link.loss").random() == b.rng("link.loss").random()
    # Asking for another stream first does not shift this one.
    c = Sim(seed=7)
    c.rng("something.else").random(100)
    d = Sim(seed=7)
    assert c.rng("link.loss").random() == d.rng("link.loss").random()
    assert Sim(seed=8).rng("link.loss").random() != Sim(seed=7).rng("link.loss").random()
    assert a.rng("x") is a.rng("x")


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        Sim(seed=-1)


def test_callbacks_order_and_half_open_window():
    sim = Sim()
    seen = []
    sim.call_at(1.0, seen.append, "a")
    sim.call_at(1.0, seen.append, "b")  # same time: FIFO
    sim.call_in(0.5, seen.append, "c")
    sim.call_at(2.0, seen.append, "late")
    sim.run(until_s=2.0)  # [0, 2): the event at exactly 2.0 is not run
    assert seen == ["c", "a", "b"]
    assert sim.now_s == 2.0
    sim.run(until_s=3.0)
    assert seen[-1] == "late"
    with pytest.raises(ValueError, match="past"):
        sim.call_at(1.0, seen.append, "x")
    with pytest.raises(ValueError, match="until_s"):
        sim.run(until_s=1.0)


def test_simpy_processes_mix_with_callbacks():
    sim = Sim()
    times = []

    def proc(env):
        yield env.timeout(1.0)
        times.append(("proc", env.now))
        yield env.timeout(1.0)
        times.append(("proc", env.now))

    sim.process(proc(sim.env))
    sim.call_at(1.5, lambda _: times.append(("cb", sim.now_s)))
    sim.run(until_s=5.0, progress=False)
    assert times == [("proc", 1.0), ("cb", 1.5), ("proc", 2.0)]


def test_process_errors_are_loud():
    sim = Sim()

    def bad(env):
        yield env.timeout(0.1)
        raise RuntimeError("boom")

    sim.process(bad(sim.env))
    with pytest.raises(RuntimeError, match="boom"):
        sim.run(until_s=1.0)


def test_progress_bar_runs_to_the_same_end():
    sim = Sim()
    hits = []
    for i in range(10):
        sim.call_at(i * 0.1, hits.append, i)
    sim.run(until_s=1.0, progress=True)
    assert hits == list(range(10)) and sim.now_s == 1.0
