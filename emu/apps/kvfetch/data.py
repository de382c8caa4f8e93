"""Text for the KV-fetch language model: real prose shipped in Debian packages, split by file, and its tokenizer.

Sources (read offline): git's release notes ``/usr/share/doc/git/RelNotes/*.txt`` (485 files, ~3 MB) and the
licence texts ``/usr/share/common-licenses/*``. Each file is normalised the same way (wrapped lines of a paragraph
joined, runs of blanks collapsed, ``====``/``----`` underlines dropped, paragraphs separated by a blank line).

Split: a file is *held out* (never trained on, used for perplexity, quality and retrieval) when the first byte of
``sha256(file name)`` is below ``HOLDOUT_BYTE`` (26/256, about 10 % of the files). The split depends only on file
names, so it is the same on every machine with the same packages.

Tokenizer: a byte-level BPE (the GPT-2 family) trained with the ``tokenizers`` library on the *training* files
only, ``VOCAB_SIZE`` tokens; ``models/kvfetch/tokenizer.json`` is what ``emu train lm`` wrote. At run time the JSON
is read by ``tokenizers`` (hash-checked against the model card).
"""
from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

TEXT_SOURCES = ("/usr/share/doc/git/RelNotes/*.txt", "/usr/share/common-licenses/*")
VOCAB_SIZE = 4096
HOLDOUT_BYTE = 26           # sha256(name)[0] < 26 -> held out (~10 %)
EOT = "<|endoftext|>"       # separates files in the token stream

_UNDERLINE = re.compile(r"^\s*[=\-~^]{3,}\s*$")
_BLANKS = re.compile(r"[ \t]+")


def source_files() -> list[Path]:
    """Every source file, sorted by path; FileNotFoundError when the packages are not installed."""
    paths = sorted(Path(p) for pattern in TEXT_SOURCES for p in glob.glob(pattern) if Path(p).is_file())
    if not paths:
        raise FileNotFoundError("no source text found under " + ", ".join(TEXT_SOURCES)
                                + " (install Debian's git package, which ships its release notes)")
    return paths


def text_available() -> bool:
    """Whether the source text is installed on this machine (the tests that read held-out text need it)."""
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
    return [normalise(Path(p).read_text(errors="replace")) for p in paths]


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE trained on ``texts`` (deterministic for the same texts)."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:  # pragma: no cover - the llm extra installs it
        raise RuntimeError("kvfetch needs the 'tokenizers' package: pip install 'emu[llm]'") from exc
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def load_tokenizer(path: Path):
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover
        raise RuntimeError("kvfetch needs the 'tokenizers' package: pip install 'emu[llm]'") from exc
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own Exception type on a malformed file
        raise ValueError(f"{path}: not a tokenizer JSON file ({exc})") from None


def encode_stream(tokenizer, texts: list[str]) -> np.ndarray:
    """All texts as one int32 token stream, files separated by the end-of-text token."""
    eot = tokenizer.token_to_id(EOT)
    out: list[int] = []
    for enc in tokenizer.encode_batch(texts):
        out.extend(enc.ids)
        out.append(eot)
    return np.asarray(out, dtype=np.int32)


def held_out_stream(tokenizer, paths: Optional[list[Path]] = None) -> np.ndarray:
    """The held-out files as one token stream (the evaluation text)."""
    if paths is None:
        paths = split_files()[1]
    return encode_stream(tokenizer, file_texts(paths))
