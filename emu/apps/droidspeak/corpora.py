"""The agents' corpora: three families of Debian documentation, none of which the base LM was trained on (no torch).

The base LM (``emu/models/kvfetch/lm.card.json``) was trained on git's release notes and the licence texts
(``emu.apps.textdata.TEXT_SOURCES``). Each agent is that LM fine-tuned on one other family:

- ``man``: manual pages of sections 1 and 8 (``/usr/share/man/man{1,8}/*.gz``, roff source turned into plain
  text by ``roff_to_text``): terse option lists and command synopses;
- ``changelog``: Debian package changelogs (``/usr/share/doc/*/changelog.Debian.gz``): bulleted change entries,
  version headers, maintainer sign-off lines;
- ``copyright``: Debian copyright files (``/usr/share/doc/*/copyright``, DEP-5 fields and licence excerpts): the
  family nearest to the base's licence texts.

A family keeps a deterministic subset of its files (``keep_byte``: ``sha256(path)[0] < keep_byte``) and splits it
into training and held-out files by another byte of the same hash (``sha256(path)[1] < HOLDOUT_BYTE``, ~10 %); both
depend only on paths, so every machine with the same packages gets the same split. Each text is cut at
``max_chars`` (a few huge changelogs would otherwise dominate).
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from emu.apps.textdata import HOLDOUT_BYTE, normalise


@dataclass(frozen=True)
class Corpus:
    """One documentation family: where its files are, which subset is kept, how a file becomes text."""

    name: str
    patterns: tuple[str, ...]
    keep_byte: int          # keep files with sha256(path)[0] < keep_byte (of 256)
    max_chars: int          # cut each text here
    roff: bool = False      # man-page source (roff) to plain text
    what: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.keep_byte <= 256:
            raise ValueError(f"keep_byte: must be in [1, 256], got {self.keep_byte!r}")
        if self.max_chars < 100:
            raise ValueError(f"max_chars: must be >= 100, got {self.max_chars!r}")


CORPORA: dict[str, Corpus] = {
    "man": Corpus("man", ("/usr/share/man/man1/*.gz", "/usr/share/man/man8/*.gz"), keep_byte=24,
                  max_chars=20_000, roff=True, what="manual pages, sections 1 and 8 (roff to text)"),
    "changelog": Corpus("changelog", ("/usr/share/doc/*/changelog.Debian.gz",), keep_byte=256, max_chars=12_000,
                        what="Debian package changelogs"),
    "copyright": Corpus("copyright", ("/usr/share/doc/*/copyright",), keep_byte=256, max_chars=12_000,
                        what="Debian copyright files (DEP-5)"),
}


def get_corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(f"corpus: unknown {name!r}; valid: {', '.join(CORPORA)}")
    return CORPORA[name]


def _digest(path: Path) -> bytes:
    return hashlib.sha256(str(path).encode()).digest()


def corpus_files(corpus: Corpus) -> list[Path]:
    """The kept files of ``corpus``, sorted; FileNotFoundError naming the patterns when none is installed."""
    paths = sorted({Path(p) for pat in corpus.patterns for p in glob.glob(pat)
                    if Path(p).is_file() and not Path(p).is_symlink()})
    kept = [p for p in paths if _digest(p)[0] < corpus.keep_byte]
    if not kept:
        raise FileNotFoundError(f"corpus {corpus.name!r}: no file found under {', '.join(corpus.patterns)}")
    return kept


def available(name: str) -> bool:
    try:
        return bool(corpus_files(get_corpus(name)))
    except FileNotFoundError:
        return False


def split(corpus: Corpus) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files) of ``corpus``."""
    files = corpus_files(corpus)
    return [p for p in files if _digest(p)[1] >= HOLDOUT_BYTE], [p for p in files if _digest(p)[1] < HOLDOUT_BYTE]


_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_NAMED = {r"\(em": "--", r"\(en": "-", r"\(aq": "'", r"\(dq": '"', r"\(lq": '"', r"\(rq": '"', r"\(bu": "*",
          r"\(oq": "'", r"\(cq": "'", r"\(co": "(c)", r"\(ti": "~", r"\(ha": "^", r"\(rs": "\\"}
_ESCAPES = re.compile(r"\\(\(..|\*\(..|\*.|\[[^\]]*\]|[&|^,/:%])")
_BREAKS = {"PP", "LP", "P", "TP", "IP", "sp", "br", "SH", "SS", "HP", "RS", "RE", "Sh", "Ss", "Pp", "It", "Bl",
           "El", "nf", "fi", "EX", "EE"}
_FONT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "Nm", "Ar", "Fl", "Op", "Xr", "Cm", "Pa",
                "Em", "Dv", "Ev", "Va", "Fn", "Li", "Sy", "Nd", "Dl", "SH", "SS", "Sh", "Ss", "It", "TP"}


def _inline(text: str) -> str:
    text = _FONT.sub("", text)
    for k, v in _NAMED.items():
        text = text.replace(k, v)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ").replace("\\~", " ")
    return _ESCAPES.sub("", text)


def roff_to_text(source: str) -> str:
    """Plain text of a man page's roff source: comments and layout requests dropped, font requests and inline
    escapes removed, section and paragraph macros turned into paragraph breaks (man(7) and mdoc(7) macros)."""
    out: list[str] = []
    for line in source.splitlines():
        if line.startswith((".\\\"", "'\\\"", '.\\"', "\\\"")):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            if not parts:
                continue
            macro, args = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro in _BREAKS:
                out.append("")
            if macro in _FONT_MACROS and args:
                out.append(_inline(args.replace('"', "")))
            continue
        out.append(_inline(line))
    return "\n".join(out)


def read_text(corpus: Corpus, path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    if corpus.roff:
        text = roff_to_text(text)
    return normalise(text)[:corpus.max_chars]


def texts(corpus: Corpus, paths: list[Path]) -> list[str]:
    """One normalised text per file (empty ones dropped)."""
    return [t for t in (read_text(corpus, p) for p in paths) if t.strip()]
