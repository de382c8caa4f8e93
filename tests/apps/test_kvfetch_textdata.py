"""The one Debian-text pipeline (``emu.apps.textdata``) rebuilds both apps' committed text artifacts exactly:
kvfetch's tokenizer and Chatterbox's token corpus (the latter through its model card)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("tokenizers")

from emu.apps import textdata  # noqa: E402
from emu.apps.artifacts import models_dir, read_card  # noqa: E402

pytestmark = pytest.mark.skipif(not textdata.text_available(),
                                reason=f"source text not installed ({textdata.TEXT_SOURCES[0]})")


def test_split_normalise_and_paragraphs():
    train, held = textdata.split_files()
    assert held and train and not set(train) & set(held)
    assert all(textdata.is_held_out(p) for p in held)
    assert textdata.normalise("a\n  b\n====\n\n\nc  d\n") == "a b\n\nc d"
    paras = textdata.paragraphs(held[:5])
    assert paras and all(len(p) > 80 and "\n" not in p for p in paras)


def test_bpe_rebuilds_the_kvfetch_tokenizer_byte_for_byte(tmp_path):
    card = read_card("kvfetch", "lm")
    train, _ = textdata.split_files()
    tok = textdata.train_bpe(textdata.file_texts(train), card.config["vocab_size"], special_tokens=[textdata.EOT])
    tok.save(str(tmp_path / "tokenizer.json"))
    assert (tmp_path / "tokenizer.json").read_bytes() == card.file("tokenizer.json").read_bytes()
    stream = textdata.held_out_stream(tok)
    n_held_out = len(textdata.split_files()[1])
    assert stream.dtype.kind == "i" and (stream == tok.token_to_id(textdata.EOT)).sum() == n_held_out


def test_chatterbox_trainer_rebuilds_its_corpus_and_card_byte_for_byte(tmp_path):
    from emu.apps.chatterbox.corpus import load_responses, train_tokens

    card = train_tokens(seed=0, out_dir=str(tmp_path))
    committed = models_dir("chatterbox")
    assert (tmp_path / "responses.json").read_bytes() == (committed / "responses.json").read_bytes()
    assert (tmp_path / "responses.card.json").read_bytes() == (committed / "responses.card.json").read_bytes()
    assert card["command"] == "emu train chatterbox-tokens" and card["metrics"]["responses"] == 96
    responses = load_responses(tmp_path)
    assert responses == load_responses() and all(200 <= len(r) <= 800 for r in responses)


def test_chatterbox_corpus_fails_closed(tmp_path):
    from emu.apps.artifacts import CardError
    from emu.apps.chatterbox.corpus import load_responses

    with pytest.raises(CardError, match="responses.card.json"):
        load_responses(tmp_path)
    src = models_dir("chatterbox")
    for name in ("responses.json", "responses.card.json"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    body = json.loads((tmp_path / "responses.json").read_text())
    body["responses"][0][0] = "Tampered"
    (tmp_path / "responses.json").write_text(json.dumps(body))
    with pytest.raises(CardError, match="sha256"):
        load_responses(tmp_path)
