"""Token corpus for the token source: real English text, tokenised offline with a byte-level BPE.

``emu train chatterbox-tokens`` (``train_tokens``) rebuilds ``emu/models/chatterbox/responses.json`` and its model
card ``responses.card.json`` from the Debian prose of ``emu.apps.textdata`` (its ``paragraphs`` view): it trains a
byte-level BPE of ``VOCAB_SIZE`` tokens on the paragraphs, cuts them, in a seeded order, into responses of
200-800 tokens and stores each response as its list of token strings. At run time only the JSON is read, through
its card (sha256 checked): no tokenizer, no download.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.apps import textdata
from emu.apps.artifacts import PACKAGED_MODELS, read_card, write_card

APP = "chatterbox"
CARD_NAME = "responses"                      # responses.card.json
RESPONSES_FILE = "responses.json"
RESPONSES_PATH = PACKAGED_MODELS / APP / RESPONSES_FILE
TEXT_SOURCES = textdata.TEXT_SOURCES
VOCAB_SIZE = 8192
N_RESPONSES = 96
MIN_TOKENS, MAX_TOKENS = 200, 800  # response lengths (apps.md §2.6 [DESIGN])


def build_responses(n_responses: int = N_RESPONSES, seed: int = 0,
                    out_path: Optional[Union[str, Path]] = None) -> dict:
    """Train the tokenizer on the Debian prose and write ``n_responses`` tokenised responses to ``out_path``
    (default: the packaged ``responses.json``) with their card beside it; returns the card."""
    paths = textdata.source_files()
    paras = textdata.paragraphs(paths)
    tokenizer = textdata.train_bpe(paras, VOCAB_SIZE)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paras))
    responses, current = [], []
    target = int(rng.integers(MIN_TOKENS, MAX_TOKENS + 1))
    for idx in order:
        ids = tokenizer.encode(paras[idx] + "\n\n").ids
        current.extend(tokenizer.decode([i]) for i in ids)
        if len(current) >= target:
            responses.append(current[:target])
            current = []
            target = int(rng.integers(MIN_TOKENS, MAX_TOKENS + 1))
            if len(responses) == n_responses:
                break
    body = json.dumps({"responses": responses}, ensure_ascii=False, separators=(",", ":"))
    out = Path(out_path) if out_path is not None else RESPONSES_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body)
    sizes = np.array([len(t.encode()) for r in responses for t in r])
    card = write_card(
        out.parent, CARD_NAME, app=APP, files=[out.name],
        config={"vocab_size": VOCAB_SIZE, "n_responses": n_responses, "min_tokens": MIN_TOKENS,
                "max_tokens": MAX_TOKENS},
        data={"sources": list(TEXT_SOURCES), "view": "emu.apps.textdata.paragraphs", "files": len(paths),
              "paragraphs": len(paras)},
        seed=seed, steps=None,
        metrics={"responses": len(responses), "tokens": int(sizes.size),
                 "token_bytes_mean": round(float(sizes.mean()), 3),
                 "token_bytes_p95": float(np.quantile(sizes, 0.95))},
        command="emu train chatterbox-tokens",
        what="LLM-like responses as token strings, for the Chatterbox token source",
        tokenizer=f"byte-level BPE (tokenizers library), vocab {VOCAB_SIZE}, trained on the sources")
    return json.loads(card.read_text())


def train_tokens(*, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """The ``chatterbox-tokens`` trainer: rebuild ``responses.json`` and its card in ``out_dir`` (default: the
    packaged models folder)."""
    out = Path(out_dir) / RESPONSES_FILE if out_dir is not None else None
    return build_responses(seed=seed, out_path=out)


def load_responses(models_dir: Optional[Union[str, Path]] = None) -> list[list[str]]:
    """The committed responses (a list of token-string lists), read through their card (sha256 checked).

    ``models_dir`` is the folder holding ``responses.card.json`` (default: ``$EMU_MODELS_DIR/chatterbox`` or the
    packaged models)."""
    card = read_card(APP, CARD_NAME, models_dir)
    body = card.read_json(RESPONSES_FILE)
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list) or not responses or not all(
            isinstance(r, list) and r and all(isinstance(t, str) for t in r) for r in responses):
        raise ValueError(f"{card.dir / RESPONSES_FILE}: not a token corpus (expected "
                         "{\"responses\": [[token, ...], ...]})")
    return responses
