import pytest

from emu.units import MBPS, MS, parse_rate_bps, parse_size_bytes, parse_time_s


def test_parse_time():
    assert parse_time_s("20ms") == pytest.approx(20 * MS)
    assert parse_time_s("1.5s") == 1.5
    assert parse_time_s("250us") == pytest.approx(250e-6)
    assert parse_time_s(0.3) == 0.3


def test_parse_rate_and_size():
    assert parse_rate_bps("10Mbps") == 10 * MBPS
    assert parse_rate_bps("1.5Gbps") == 1.5e9
    assert parse_rate_bps("800kbit/s") == 800e3
    assert parse_size_bytes("64KB") == 64000
    assert parse_size_bytes("1MiB") == 1 << 20


def test_bad_strings_name_the_field():
    with pytest.raises(ValueError, match="link.rate"):
        parse_rate_bps("fast", "link.rate")
    with pytest.raises(ValueError, match="delay"):
        parse_time_s("10 parsecs", "delay")
    with pytest.raises(ValueError, match="size"):
        parse_size_bytes(True, "size")
