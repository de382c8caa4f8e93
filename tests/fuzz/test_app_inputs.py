"""Learned apps' inputs: short or corrupt videos and bad token timelines fail before any work, naming the file;
the token corpus is never read without its card."""
from __future__ import annotations

import shutil

import numpy as np
import pytest


def _write_video(path, n_frames: int) -> None:
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(n_frames):
            frame = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            for pkt in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)


def test_a_video_shorter_than_max_frames_fails_naming_it(tmp_path):
    from emu.apps.grace.endpoint import load_frames

    video = tmp_path / "short46.mp4"
    _write_video(video, 46)
    with pytest.raises(ValueError, match=r"short46\.mp4 has 46 decodable frames, fewer than max_frames = 120"):
        load_frames(str(video), 120)
    assert len(load_frames(str(video), 46)) == 46   # an explicit frame count that fits is accepted


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.6, 0.9])
def test_a_truncated_video_fails_naming_it_or_is_counted(tmp_path, keep):
    """Cut at any point: an error naming the file, never fewer frames than asked for."""
    from emu.apps.grace.endpoint import load_frames

    whole = tmp_path / "whole.mp4"
    _write_video(whole, 40)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    try:
        clip = load_frames(str(cut), 40)
    except (ValueError, FileNotFoundError) as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert len(clip) == 40


def test_the_grace_eval_checks_the_video_before_any_work(tmp_path):
    from emu.apps.grace.eval import GraceEvalConfig, check_inputs

    video = tmp_path / "short.mp4"
    _write_video(video, 10)
    with pytest.raises(ValueError, match="short.mp4 has 10 decodable frames"):
        check_inputs(GraceEvalConfig(video=str(video)))


@pytest.mark.parametrize("content,expected", [
    (b'0.1\t"a"\ninf\t"b"\n', r"bad\.txt:2: time must be a finite number"),
    (b'nan\t"a"\n', r"bad\.txt:1: time must be a finite number"),
    (b'1e300\t"a"\n', r"bad\.txt:1: time must be a finite number of seconds in \[0, 1e\+07\]"),
    (b'0.2\t"a"\n0.1\t"b"\n', r"bad\.txt:2: time 0.1 is before"),
    (bytes(range(128, 256)), r"bad\.txt: not a text timeline"),
    (b'0.1\t5\n', r"bad\.txt:1: expected"),
    (b"\n", r"bad\.txt: no tokens"),
])
def test_bad_token_timelines_name_the_file_and_line(tmp_path, content, expected):
    from emu.apps.chatterbox.tokens import load_timeline

    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=expected):
        load_timeline(path)


def test_the_token_corpus_is_not_read_without_its_card(tmp_path):
    from emu.apps.artifacts import CardError, models_dir
    from emu.apps.chatterbox.corpus import RESPONSES_FILE, load_responses

    shutil.copy(models_dir("chatterbox") / RESPONSES_FILE, tmp_path / RESPONSES_FILE)
    with pytest.raises(CardError, match="model card not found"):
        load_responses(tmp_path)


def test_the_token_corpus_is_not_read_when_it_differs_from_its_card(tmp_path):
    from emu.apps.artifacts import CardError, models_dir
    from emu.apps.chatterbox.corpus import RESPONSES_FILE, load_responses

    for path in models_dir("chatterbox").iterdir():
        shutil.copy(path, tmp_path / path.name)
    body = (tmp_path / RESPONSES_FILE).read_bytes()
    (tmp_path / RESPONSES_FILE).write_bytes(body.replace(b'"', b"'", 1))
    with pytest.raises(CardError):
        load_responses(tmp_path)


def test_every_eval_config_refuses_non_finite_absurd_and_boolean_numbers():
    """Every numeric field of every app's eval config (the ``emu eval APP --field`` flags)."""
    import emu.apps
    from emu.apps.base import config_fields, field_type

    accepted = []
    for name in emu.apps.names():
        spec = emu.apps.get(name)
        if spec.evaluate is None:
            continue
        cls = spec.eval_config_class()
        for field in config_fields(cls):
            tp = field_type(cls, field)
            if tp not in (int, float):
                continue
            bad = [float("inf"), float("nan"), -float("inf"), True, "5"] + \
                ([1e308, -1e308] if tp is float else [10**20, -10**20])
            for value in bad:
                try:
                    cls(**{field: value})
                except (ValueError, FileNotFoundError) as exc:
                    assert field in str(exc), str(exc)
                else:
                    accepted.append(f"{name}.{field} = {value!r}")
    assert accepted == []


@pytest.mark.parametrize("content,expected", [
    (b"100\n" * 10 + b"99999999999999999999999\n" + b"100\n" * 50, r"video_size_3:11: chunk size must be > 0 and <= 1e\+12"),
    (b"100\n" * 10 + b"-5\n" + b"100\n" * 50, r"video_size_3:11: chunk size must be > 0"),
    (b"100\n" * 10 + b"1.5e3\n" + b"100\n" * 50, r"video_size_3:11: not an integer"),
    (bytes(range(128, 256)), r"video_size_3: not a text file"),
])
def test_bad_abr_chunk_sizes_name_the_file_and_line(tmp_path, content, expected):
    from emu.apps.abr.video import load_video

    for level in range(6):
        (tmp_path / f"video_size_{level}").write_bytes(b"100\n" * 60)
    (tmp_path / "video_size_3").write_bytes(content)
    with pytest.raises(ValueError, match=expected):
        load_video(tmp_path)
