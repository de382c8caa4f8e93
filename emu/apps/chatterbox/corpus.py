"""Token corpus for the token source: real English text, tokenised offline with a byte-level BPE.

``emu train chatterbox-tokens`` rebuilds ``models/chatterbox/responses.json`` (and its card) from prose that
ships in Debian packages (git's release notes under /usr/share/doc/git/RelNotes, the licence texts under
/usr/share/common-licenses): it trains a byte-level BPE (the GPT-2 tokenizer family) with the ``tokenizers``
library, cuts the text into responses of 200-800 tokens and stores each response as its list of token strings.
At run time only the JSON is read (hash-checked): no tokenizer, no download.
"""
from __future__ import annotations

import glob
import hashlib
import json
import re
from pathlib import Path
from typing import Optional

import numpy as np

from emu.apps.artifacts import PACKAGED_MODELS  # noqa: E402
RESPONSES_PATH = PACKAGED_MODELS / "chatterbox" / "responses.json"
CARD_PATH = PACKAGED_MODELS / "chatterbox" / "responses.card.json"
TEXT_SOURCES = ("/usr/share/doc/git/RelNotes/*.txt", "/usr/share/common-licenses/*")
VOCAB_SIZE = 8192
MIN_TOKENS, MAX_TOKENS = 200, 800  # response lengths (apps.md §2.6 [DESIGN])


def _paragraphs(paths: list[str]) -> list[str]:
    paras = []
    for path in paths:
        text = Path(path).read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):
            clean = " ".join(line.strip(" *-=\t") for line in block.splitlines()).strip()
            if len(clean) > 80 and not clean.startswith(("Git ", "Updates since", "Fixes since")):
                paras.append(clean)
    return paras


def build_responses(n_responses: int = 96, seed: int = 0, out_path: Optional[Path] = None) -> dict:
    """Train the tokenizer on the Debian prose and write ``n_responses`` tokenised responses with a card."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:  # pragma: no cover - training-only dependency
        raise RuntimeError("emu train chatterbox-tokens needs the 'tokenizers' package: pip install tokenizers") from exc
    paths = sorted(p for pattern in TEXT_SOURCES for p in glob.glob(pattern) if Path(p).is_file())
    if not paths:
        raise FileNotFoundError("no source text found under " + ", ".join(TEXT_SOURCES)
                                + " (install Debian's git package, which ships its release notes)")
    paras = _paragraphs(paths)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(paras, trainer=trainer)
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
    card = {
        "name": "chatterbox-tokens",
        "what": "LLM-like responses as token strings, for the Chatterbox token source",
        "data": {"sources": TEXT_SOURCES, "files": len(paths), "paragraphs": len(paras)},
        "tokenizer": f"byte-level BPE (tokenizers library), vocab {VOCAB_SIZE}, trained on the sources",
        "seed": seed,
        "responses": len(responses),
        "tokens": int(sizes.size),
        "token_bytes_mean": round(float(sizes.mean()), 3),
        "token_bytes_p95": float(np.quantile(sizes, 0.95)),
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
        "file": out.name,
    }
    (out.parent / CARD_PATH.name).write_text(json.dumps(card, indent=2) + "\n")
    return card


def load_responses(path: Optional[Path] = None) -> list[list[str]]:
    """The committed responses, checked against the sha256 in their card."""
    path = Path(path) if path is not None else RESPONSES_PATH
    if not path.exists():
        raise FileNotFoundError(f"{path}: token corpus not found; rebuild it with `emu train chatterbox-tokens`")
    body = path.read_bytes()
    card_path = path.parent / CARD_PATH.name
    if card_path.exists():
        expected = json.loads(card_path.read_text()).get("sha256")
        if expected and hashlib.sha256(body).hexdigest() != expected:
            raise ValueError(f"{path}: sha256 does not match {card_path.name}; the file was modified")
    try:
        return json.loads(body)["responses"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a token corpus ({exc})") from None
