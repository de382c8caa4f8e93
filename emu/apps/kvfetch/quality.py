"""Quality of a (decoded) KV cache: how well the model continues from it (torch; imported lazily).

Two tasks, both answered *only* through the KV cache of the context (the context tokens themselves are not
re-read):

- **Continuation** (held-out text): the context is ``N`` tokens of a held-out file stream, the continuation the
  next ``M`` tokens. The model reads the continuation after the cache and predicts each next token; we report
  perplexity, next-token accuracy (top-1 = the true token) and agreement (top-1 = the original cache's top-1).
  ``ppl_increase_pct`` = 100 · (ppl(decoded) / ppl(original) − 1) on the same text.
- **Retrieval** (long-context, induction-style; [DESIGN]): a fact ``" The passcode of the <noun> release is"``
  + 2 random *key* words + 4 random *value* words + ``"."`` is planted 10-30 % into held-out filler text (the
  words are drawn from whole-word tokens that do not occur in that context); the query after the context repeats
  the prefix and the key words, and the model must continue with the 4 value words. Accuracy is per value token,
  teacher-forced top-1. The random words cannot be guessed from the language prior (chance ≈ 1/1500 per token);
  the model gets them only by attending back to the planted fact (induction heads: match the key, copy what
  followed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from emu.apps.kvfetch.model import TinyLM, numpy_to_cache, prefill


@dataclass
class ContinuationScore:
    nll_sum: float
    n: int
    correct: int
    agree: int = 0

    @property
    def ppl(self) -> float:
        return math.exp(self.nll_sum / self.n)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


@torch.inference_mode()
def continuation_logits(model: TinyLM, kv: np.ndarray, tokens: np.ndarray, prev_token: int) -> torch.Tensor:
    """Logits (M, vocab) of ``tokens`` read after the cache ``kv`` (layers, 2, N, channels) of a context whose
    last token is ``prev_token``."""
    cache = numpy_to_cache(kv, model.cfg)
    ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64))[None]
    logits, _ = model(ids, past=cache, prev_token=torch.as_tensor([int(prev_token)]))
    return logits[0]


def score_continuation(model: TinyLM, kv: np.ndarray, cont: np.ndarray, prev_token: int,
                       reference_top1: Optional[torch.Tensor] = None) -> tuple[ContinuationScore, torch.Tensor]:
    """Score predictions of ``cont[1:]`` from ``cont[:-1]`` read after ``kv`` (context ending with
    ``prev_token``); returns (score, top-1 ids)."""
    logits = continuation_logits(model, kv, cont[:-1], prev_token)
    target = torch.as_tensor(np.asarray(cont[1:], dtype=np.int64))
    nll = F.cross_entropy(logits, target, reduction="sum")
    top1 = logits.argmax(-1)
    agree = int((top1 == reference_top1).sum()) if reference_top1 is not None else len(target)
    return ContinuationScore(float(nll), len(target), int((top1 == target).sum()), agree), top1


# -- retrieval task -----------------------------------------------------------------------------------------------

FACT_NOUNS = ("next", "maintenance", "stable", "feature", "security", "major", "minor", "preview")


def code_vocabulary(tokenizer) -> np.ndarray:
    """Token ids that are a whole lowercase word with a leading space (≥ 4 letters): the passcode alphabet."""
    ids = []
    for i in range(tokenizer.get_vocab_size()):
        s = tokenizer.decode([i])
        if s.startswith(" ") and s[1:].isalpha() and s[1:].islower() and len(s) >= 5:
            ids.append(i)
    return np.asarray(ids, dtype=np.int64)


@dataclass
class RetrievalSample:
    context: np.ndarray      # N tokens with the fact planted
    query: np.ndarray        # prefix + code (the code is what must be predicted)
    code_start: int          # index in ``query`` of the first code token
    fact_pos: int            # where in the context the fact begins


def make_retrieval_sample(tokenizer, filler: np.ndarray, rng: np.random.Generator, n_context: int,
                          code_tokens: int = 4, key_tokens: int = 2, alphabet: Optional[np.ndarray] = None,
                          depth: tuple[float, float] = (0.1, 0.3)) -> RetrievalSample:
    """Plant a random passcode early in ``n_context`` tokens of ``filler`` (held-out text) and ask for it.

    The passcode is ``key_tokens`` + ``code_tokens`` random words; the query gives the key words (which occur
    nowhere else in the context) and the model must continue with the ``code_tokens`` value words."""
    if alphabet is None:
        alphabet = code_vocabulary(tokenizer)
    noun = FACT_NOUNS[int(rng.integers(len(FACT_NOUNS)))]
    prefix = np.asarray(tokenizer.encode(f" The passcode of the {noun} release is").ids, dtype=np.int64)
    start = int(rng.integers(0, len(filler) - n_context))
    ctx = np.asarray(filler[start:start + n_context], dtype=np.int64).copy()
    words = rng.choice(np.setdiff1d(alphabet, ctx), size=key_tokens + code_tokens, replace=False)
    dot = np.asarray(tokenizer.encode(".").ids, dtype=np.int64)
    fact = np.concatenate([prefix, words, dot])
    pos = int(rng.uniform(*depth) * n_context)
    ctx[pos:pos + len(fact)] = fact
    sep = np.asarray(tokenizer.encode("\n\nQuestion:").ids, dtype=np.int64)
    query = np.concatenate([sep, prefix, words])
    return RetrievalSample(ctx, query, len(sep) + len(prefix) + key_tokens, pos)


@torch.inference_mode()
def score_retrieval(model: TinyLM, kv: np.ndarray, sample: RetrievalSample) -> tuple[int, int]:
    """(code tokens predicted right, code tokens) for one sample answered from ``kv``."""
    logits = continuation_logits(model, kv, sample.query[:-1], int(sample.context[-1]))
    start = sample.code_start
    pred = logits[start - 1:].argmax(-1).numpy()
    target = sample.query[start:]
    return int((pred == target).sum()), len(target)


def original_kv(model: TinyLM, ids: np.ndarray) -> np.ndarray:
    from emu.apps.kvfetch.model import cache_to_numpy

    cache, _ = prefill(model, ids)
    return cache_to_numpy(cache)


@torch.inference_mode()
def recompute_chunks(model: TinyLM, kv: np.ndarray, ids: np.ndarray, text_chunks: Sequence[tuple[int, int]]
                     ) -> np.ndarray:
    """Replace the chunks ``[s, e)`` sent as text by recomputing them from their tokens, in order, after the
    (decoded) cache of everything before them: what a receiver that got those chunks as text would hold."""
    from emu.apps.kvfetch.model import cache_to_numpy

    out = kv.copy()
    for s, e in sorted(text_chunks):
        past = numpy_to_cache(out[:, :, :s], model.cfg) if s > 0 else None
        cache, _ = prefill(model, ids[s:e], past=past, prev_token=int(ids[s - 1]) if s > 0 else None)
        out[:, :, s:e] = cache_to_numpy(cache)[:, :, s:e]
    return out
