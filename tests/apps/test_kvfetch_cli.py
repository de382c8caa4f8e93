"""``emu eval kvfetch`` / ``emu train lm``: registry, light import, and bad input failing early with its name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emu.cli import main

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "kvfetch"


def run_cli(args, capsys):
    t0 = time.perf_counter()
    code = main(["eval", "kvfetch", *args])
    out = capsys.readouterr()
    return code, out.out, out.err, time.perf_counter() - t0


def test_import_does_not_load_torch():
    code = ("import sys, emu, emu.apps.kvfetch.cli, emu.apps.kvfetch.codec, emu.apps.kvfetch.app, "
            "emu.apps.kvfetch.eval, emu.apps.kvfetch.weights, emu.cli; emu.cli.build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_registered_for_eval_and_train():
    from emu.apps.registry import APP_CLI_MODULES
    from emu.cli import build_parser

    assert APP_CLI_MODULES["kvfetch"] == "emu.apps.kvfetch.cli"
    args = build_parser().parse_args(["train", "lm", "--seed", "3", "--out", "x"])
    assert args.trainer == "emu.apps.kvfetch.cli:train_lm" and args.seed == 3 and args.out == "x"
    args = build_parser().parse_args(["eval", "kvfetch", "--context-tokens", "1024", "--slo-s", "2", "--json"])
    assert args.context_tokens == 1024 and args.slo_s == 2.0 and args.json


@pytest.mark.parametrize("args, needle", [
    (["--context-tokens", "100"], "context_tokens"),
    (["--context-tokens", "9000"], "context_tokens"),
    (["--slo-s", "0"], "slo_s"),
    (["--slo-s", "nan"], "slo_s"),
    (["--trials", "0"], "trials"),
    (["--rtt-ms", "-5"], "rtt_s"),
    (["--chunk-tokens", "4"], "chunk_tokens"),
    (["--prefill-tok-s", "-1"], "prefill_tokens_per_s"),
    (["--prefill-tok-s", "0"], "prefill_tokens_per_s"),
    (["--decode-el-s", "0"], "ac_decode_elements_per_s"),
])
def test_out_of_range_parameters_fail_early(args, needle, capsys):
    code, _, err, dt = run_cli(args, capsys)
    assert code == 2 and needle in err and dt < 5


def test_missing_trace_fails_early(tmp_path, capsys):
    code, _, err, dt = run_cli(["--trace", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "nope.txt" in err and dt < 5


def test_malformed_trace_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.log"
    bad.write_text("0 10.0\n1 12.0\nthree 4\n")
    code, _, err, dt = run_cli(["--trace", str(bad)], capsys)
    assert code == 2 and "bad.log" in err and ":3" in err and dt < 5


def _copy_model(tmp_path) -> Path:
    if not (MODEL_DIR / "lm.card.json").is_file():
        pytest.skip("committed model missing")
    dst = tmp_path / "model"
    shutil.copytree(MODEL_DIR, dst)
    return dst


def test_missing_weights_fail_early(tmp_path, capsys):
    d = _copy_model(tmp_path)
    (d / "lm.pt").unlink()
    code, _, err, dt = run_cli(["--trace", "none", "--model-dir", str(d)], capsys)
    assert code == 2 and "lm.pt" in err and "not found" in err and dt < 5


def test_modified_weights_fail_the_hash_check(tmp_path, capsys):
    d = _copy_model(tmp_path)
    with open(d / "lm.pt", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    code, _, err, dt = run_cli(["--trace", "none", "--model-dir", str(d)], capsys)
    assert code == 2 and "lm.pt" in err and "sha256" in err and dt < 5


def test_malformed_card_and_tokenizer_fail_early(tmp_path, capsys):
    d = _copy_model(tmp_path)
    (d / "lm.card.json").write_text("{not json")
    code, _, err, _ = run_cli(["--trace", "none", "--model-dir", str(d)], capsys)
    assert code == 2 and "lm.card.json" in err
    d2 = _copy_model(tmp_path / "b")
    (d2 / "tokenizer.json").write_text("{}")
    code, _, err, _ = run_cli(["--trace", "none", "--model-dir", str(d2)], capsys)
    assert code == 2 and "tokenizer.json" in err


def test_garbage_weights_with_matching_hash_fail_at_load(tmp_path):
    pytest.importorskip("torch")
    from emu.apps.kvfetch.weights import load_model, sha256_file

    d = _copy_model(tmp_path)
    (d / "lm.pt").write_bytes(b"this is not a torch file")
    card = json.loads((d / "lm.card.json").read_text())
    card["sha256"]["weights"] = sha256_file(d / "lm.pt")
    (d / "lm.card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="lm.pt"):
        load_model(d)
