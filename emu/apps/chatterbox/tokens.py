"""The token source: when an LLM emits each token of a response, and what the token is.

Default pacing: a mean inter-token interval of 35 ms, the per-token latency one public measurement found for
GPT-3.5 through OpenAI's API (taivo.ai, "GPT-3.5 and GPT-4 response times", 2023: 35 ms/token; 28 ms on Azure,
94 ms for GPT-4). Per-token jitter is a gamma distribution with coefficient of variation ``jitter_cv`` (0.3 by
default: our choice, not a measured value). Token strings and response lengths come from the committed corpus
(``corpus.py``: real prose, byte-level BPE). Any response can instead be replayed from a file of
``time_s<TAB>token`` lines (token JSON-quoted) with ``load_timeline``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from emu.validate import MAX_COUNT, MAX_DURATION_S, check_int, check_number

MAX_TIMELINE_BYTES = 64 << 20   # 64 MiB of time_s<TAB>"token" lines


@dataclass(frozen=True, kw_only=True)
class TokenSourceConfig:
    inter_token_s: float = 0.035  # taivo.ai measurement of GPT-3.5 (OpenAI API), 35 ms per token
    jitter_cv: float = 0.3        # our choice: gamma-distributed gaps with this coefficient of variation
    n_tokens: Optional[int] = None  # None: the corpus response's own length (200-800 tokens)

    def __post_init__(self) -> None:
        check_number("inter_token_s", self.inter_token_s, lo=0, lo_open=True, hi=60, unit="s")
        check_number("jitter_cv", self.jitter_cv, lo=0, hi=3)
        if self.n_tokens is not None:
            check_int("n_tokens (or None)", self.n_tokens, lo=1, hi=MAX_COUNT)


@dataclass(frozen=True)
class TokenTimeline:
    """Generation times (seconds after the request, non-decreasing) and the token strings."""

    times_s: np.ndarray
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.times_s) != len(self.tokens) or len(self.tokens) == 0:
            raise ValueError("a timeline needs one time per token and at least one token")

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)


def generate(config: TokenSourceConfig, rng: np.random.Generator, responses: Sequence[Sequence[str]],
             start_s: float = 0.0) -> TokenTimeline:
    """Pick a response from ``responses`` and pace its tokens: the first after one gap, then one gap each."""
    tokens = list(responses[int(rng.integers(len(responses)))])
    if config.n_tokens is not None:
        while len(tokens) < config.n_tokens:
            tokens += list(responses[int(rng.integers(len(responses)))])
        tokens = tokens[: config.n_tokens]
    n = len(tokens)
    if config.jitter_cv == 0:
        gaps = np.full(n, config.inter_token_s)
    else:
        shape = 1.0 / config.jitter_cv ** 2
        gaps = rng.gamma(shape, config.inter_token_s / shape, n)
    return TokenTimeline(start_s + np.cumsum(gaps), tuple(tokens))


def load_timeline(path: str | Path) -> TokenTimeline:
    """Read ``time_s<TAB>"token"`` lines (token JSON-quoted); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: token timeline file not found")
    if path.stat().st_size > MAX_TIMELINE_BYTES:
        raise ValueError(f"{path}: token timeline of {path.stat().st_size} bytes is larger than the limit of "
                         f"{MAX_TIMELINE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text timeline (undecodable byte at offset {exc.start})") from None
    times, tokens = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t", 1)
        try:
            t = float(parts[0])
            token = json.loads(parts[1])
            if not isinstance(token, str):
                raise ValueError("token is not a JSON string")
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}:{lineno}: expected 'time_s<TAB>\"token\"', got {line[:60]!r} ({exc})") from None
        if not 0 <= t <= MAX_DURATION_S:   # NaN and inf too
            raise ValueError(f"{path}:{lineno}: time must be a finite number of seconds in [0, {MAX_DURATION_S:g}], "
                             f"got {parts[0][:30]!r}")
        if times and t < times[-1]:
            raise ValueError(f"{path}:{lineno}: time {t} is before the previous line's {times[-1]}")
        if t < 0:
            raise ValueError(f"{path}:{lineno}: negative time {t}")
        times.append(t)
        tokens.append(token)
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    return TokenTimeline(np.array(times), tuple(tokens))


def save_timeline(timeline: TokenTimeline, path: str | Path) -> None:
    lines = [f"{t:.6f}\t{json.dumps(tok, ensure_ascii=False)}" for t, tok in zip(timeline.times_s, timeline.tokens)]
    Path(path).write_text("\n".join(lines) + "\n")
