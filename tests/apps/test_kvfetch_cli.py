"""``emu eval kvfetch`` / ``emu train lm``: registry, light import, and bad input failing early with its name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emu.apps.artifacts import models_dir
from emu.cli import main

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = models_dir("kvfetch")


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    """Bad input must fail before the model is loaded (before any work)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr("emu.apps.kvfetch.weights.load_model", refuse)


def run_cli(args, capsys):
    code = main(["eval", "kvfetch", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_does_not_load_torch():
    code = ("import sys, emu, emu.apps.kvfetch.spec, emu.apps.kvfetch.codec, emu.apps.kvfetch.app, "
            "emu.apps.kvfetch.eval, emu.apps.kvfetch.weights, emu.apps.kvfetch.lm_config, emu.apps.kvfetch.menu, "
            "emu.apps.kvfetch.calibrate, emu.apps.kvfetch.train, emu.apps.textdata, emu.cli; "
            "emu.cli.build_parser(); emu.apps.get('kvfetch').make_config({}, evaluation=True); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_registered_for_eval_and_train():
    import emu.apps
    from emu.cli import build_parser

    from emu.apps.kvfetch.app import SCHEMES

    spec = emu.apps.get("kvfetch")
    assert spec.schemes == SCHEMES
    assert spec.schemes[0] == "cachegen" and {"code_rule", "quant8", "quant4", "text", "level0", "level3"} <= \
        set(spec.schemes)
    args = build_parser().parse_args(["train", "lm", "--seed", "3", "--out", "x"])
    assert args.trainer == "emu.apps.kvfetch.train:train_lm" and args.seed == 3 and args.out == "x"
    args = build_parser().parse_args(["eval", "kvfetch", "--context-tokens", "1024", "--slo-s", "2", "--json",
                                      "--prefill-tok-s", "500", "--decode-el-s", "2e7"])
    assert args.cfg_context_tokens == 1024 and args.cfg_slo_s == 2.0 and args.json
    assert args.cfg_prefill_tok_s == 500 and args.cfg_decode_el_s == 2e7


def test_eval_config_fields_and_constant_link():
    from emu.apps.kvfetch.eval import DEFAULT_TRACE, KVFetchEvalConfig

    cfg = KVFetchEvalConfig()
    assert cfg.trace == DEFAULT_TRACE and cfg.rate_bps is None
    const = KVFetchEvalConfig(rate_bps=30e6, prefill_tok_s=500.0)
    assert const.trace is None
    ep = const.endpoint_config()
    assert ep.prefill_tok_s == 500.0 and ep.compute().prefill_tok_s == 500.0 and ep.slo_s == const.slo_s
    with pytest.raises(ValueError, match="trace"):
        KVFetchEvalConfig(trace=None)


@pytest.mark.parametrize("args, needle", [
    (["--context-tokens", "100"], "context_tokens"),
    (["--context-tokens", "9000"], "context_tokens"),
    (["--slo-s", "0"], "slo_s"),
    (["--trials", "0"], "trials"),
    (["--rtt-s", "-5"], "rtt_s"),
    (["--chunk-tokens", "4"], "chunk_tokens"),
    (["--rate-bps", "0"], "rate_bps"),
    (["--prefill-tok-s", "-1"], "prefill_tok_s"),
    (["--prefill-tok-s", "0"], "prefill_tok_s"),
    (["--decode-el-s", "0"], "decode_el_s"),
    (["--schemes", "cachegen,bogus"], "bogus"),
])
def test_out_of_range_parameters_fail_early(args, needle, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2 and needle in err


def test_non_finite_number_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "kvfetch", "--slo-s", "nan"])
    assert exc.value.code == 2 and "--slo-s" in capsys.readouterr().err


def test_missing_trace_fails_early(tmp_path, capsys):
    code, _, err = run_cli(["--trace", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "nope.txt" in err


def test_malformed_trace_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.log"
    bad.write_text("0 10.0\n1 12.0\nthree 4\n")
    code, _, err = run_cli(["--trace", str(bad)], capsys)
    assert code == 2 and "bad.log" in err and ":3" in err


def _copy_model(tmp_path) -> Path:
    if not (MODEL_DIR / "lm.card.json").is_file():
        pytest.skip("committed model missing")
    dst = tmp_path / "model"
    shutil.copytree(MODEL_DIR, dst)
    return dst


def test_missing_card_fails_closed(tmp_path, capsys):
    d = _copy_model(tmp_path)
    (d / "lm.card.json").unlink()
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d)], capsys)
    assert code == 2 and "lm.card.json" in err and "not found" in err


def test_missing_weights_fail_early(tmp_path, capsys):
    d = _copy_model(tmp_path)
    (d / "lm.pt").unlink()
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d)], capsys)
    assert code == 2 and "lm.pt" in err and "missing" in err


def test_modified_weights_fail_the_hash_check(tmp_path, capsys):
    d = _copy_model(tmp_path)
    with open(d / "lm.pt", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d)], capsys)
    assert code == 2 and "lm.pt" in err and "sha256" in err


def test_malformed_card_and_tokenizer_fail_early(tmp_path, capsys):
    d = _copy_model(tmp_path)
    (d / "lm.card.json").write_text("{not json")
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d)], capsys)
    assert code == 2 and "lm.card.json" in err
    d2 = _copy_model(tmp_path / "b")
    card = json.loads((d2 / "lm.card.json").read_text())
    card["config"]["n_heads"] = 5
    (d2 / "lm.card.json").write_text(json.dumps(card))
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d2)], capsys)
    assert code == 2 and "lm.card.json" in err and "config" in err
    d3 = _copy_model(tmp_path / "c")
    (d3 / "tokenizer.json").write_text("{}")
    code, _, err = run_cli(["--rate-bps", "3e7", "--models-dir", str(d3)], capsys)
    assert code == 2 and "tokenizer.json" in err


def test_garbage_weights_with_matching_hash_fail_at_load(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.undo()
    from emu.apps.artifacts import sha256_file
    from emu.apps.kvfetch.weights import load_model

    d = _copy_model(tmp_path)
    (d / "lm.pt").write_bytes(b"this is not a torch file")
    card = json.loads((d / "lm.card.json").read_text())
    card["files"]["lm.pt"] = {"sha256": sha256_file(d / "lm.pt"), "bytes": (d / "lm.pt").stat().st_size}
    (d / "lm.card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="lm.pt"):
        load_model(d)
