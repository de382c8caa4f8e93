"""Real English text shipped in Debian packages, and the byte-level BPE trained on it (no torch).

The one text pipeline of the learned apps that need prose (``kvfetch``'s language model, ``chatterbox``'s token
corpus). Sources, read offline: git's release notes ``/usr/share/doc/git/RelNotes/*.txt`` (485 files, ~3 MB) and
the licence texts ``/usr/share/common-licenses/*``. Two views of the same files:

- ``normalise`` / ``file_texts``: one text per file, wrapped lines of a paragraph joined, runs of blanks
  collapsed, ``====``/``----`` underlines dropped, paragraphs separated by a blank line (kvfetch);
- ``paragraphs``: the prose paragraphs of all files (longer than 80 characters, release-note headings skipped),
  each on one line (chatterbox).

Held-out split (``split_files``): a file is held out when the first byte of ``sha256(file name)`` is below
``HOLDOUT_BYTE`` (26/256, about 10 % of the files); it depends only on file names, so it is the same on every
machine with the same packages.

Tokenizer: ``train_bpe`` trains a byte-level BPE (the GPT-2 family; Radford et al. 2019, §2.2) with the
``tokenizers`` library, deterministic for the same texts; ``load_tokenizer`` reads one back from its JSON.
"""
from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

TEXT_SOURCES = ("/usr/share/doc/git/RelNotes/*.txt", "/usr/share/common-licenses/*")
HOLDOUT_BYTE = 26           # sha256(name)[0] < 26 -> held out (~10 %)
EOT = "<|endoftext|>"       # separates files in a token stream

_UNDERLINE = re.compile(r"^\s*[=\-~^]{3,}\s*$")
_BLANKS = re.compile(r"[ \t]+")
_PARAGRAPH_SKIP = ("Git ", "Updates since", "Fixes since")   # release-note headings, not prose


def source_files() -> list[Path]:
    """Every source file, sorted by path; FileNotFoundError when the packages are not installed."""
    paths = sorted(Path(p) for pattern in TEXT_SOURCES for p in glob.glob(pattern) if Path(p).is_file())
    if not paths:
        raise FileNotFoundError("no source text found under " + ", ".join(TEXT_SOURCES)
                                + " (install Debian's git package, which ships its release notes)")
    return paths


def text_available() -> bool:
    """Whether the source text is installed on this machine (tests that read it skip without it)."""
    return any(Path(p).is_file() for pattern in TEXT_SOURCES for p in glob.glob(pattern))


def is_held_out(path: Path) -> bool:
    """True for the ~10 % of files whose name hashes below ``HOLDOUT_BYTE``."""
    return hashlib.sha256(Path(path).name.encode()).digest()[0] < HOLDOUT_BYTE


def split_files() -> tuple[list[Path], list[Path]]:
    """(training files, held-out files)."""
    files = source_files()
    return [p for p in files if not is_held_out(p)], [p for p in files if is_held_out(p)]


def normalise(text: str) -> str:
    """Paragraphs of one file: wrapped lines joined, blanks collapsed, underlines dropped."""
    paras = []
    for block in re.split(r"\n\s*\n", text):
        lines = [_BLANKS.sub(" ", ln).strip() for ln in block.splitlines() if not _UNDERLINE.match(ln)]
        para = " ".join(ln for ln in lines if ln)
        if para:
            paras.append(para)
    return "\n\n".join(paras)


def file_texts(paths: Iterable[Path]) -> list[str]:
    """One normalised text per file."""
    return [normalise(Path(p).read_text(errors="replace")) for p in paths]


def paragraphs(paths: Iterable[Path]) -> list[str]:
    """The prose paragraphs of ``paths``, in order: each block's lines stripped of list and underline marks and
    joined; blocks of 80 characters or fewer and release-note headings are dropped."""
    paras = []
    for path in paths:
        text = Path(path).read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):
            clean = " ".join(line.strip(" *-=\t") for line in block.splitlines()).strip()
            if len(clean) > 80 and not clean.startswith(_PARAGRAPH_SKIP):
                paras.append(clean)
    return paras


def _tokenizers():
    try:
        import tokenizers
    except ImportError as exc:  # pragma: no cover - the llm extra installs it
        raise RuntimeError("this needs the 'tokenizers' package: pip install 'emu[llm]'") from exc
    return tokenizers


def train_bpe(texts: Sequence[str], vocab_size: int, special_tokens: Sequence[str] = ()):
    """A byte-level BPE of ``vocab_size`` tokens trained on ``texts`` (deterministic for the same texts)."""
    tk = _tokenizers()
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 257 <= vocab_size <= 1 << 20:
        raise ValueError(f"vocab_size: must be an integer in [257, 1048576], got {vocab_size!r}")
    tokenizer = tk.Tokenizer(tk.models.BPE())
    tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def load_tokenizer(path: Path):
    """A tokenizer from its JSON file; ValueError naming the file when it is not one."""
    tk = _tokenizers()
    try:
        return tk.Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own Exception type on a malformed file
        raise ValueError(f"{path}: not a tokenizer JSON file ({exc})") from None


def encode_stream(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """All texts as one int32 token stream, each followed by the end-of-text token."""
    eot = tokenizer.token_to_id(EOT)
    if eot is None:
        raise ValueError(f"tokenizer: has no {EOT!r} token to separate texts")
    out: list[int] = []
    for enc in tokenizer.encode_batch(list(texts)):
        out.extend(enc.ids)
        out.append(eot)
    return np.asarray(out, dtype=np.int32)


def held_out_stream(tokenizer, paths: Optional[Sequence[Path]] = None) -> np.ndarray:
    """The held-out files (or ``paths``) as one token stream: the evaluation text."""
    if paths is None:
        paths = split_files()[1]
    return encode_stream(tokenizer, file_texts(paths))
