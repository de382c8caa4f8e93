"""The video: a chunk-size ladder of 6 bitrates, 48 chunks of 4 s each (Pensieve / NetLLM ``video_size_K``).

Each of the files ``video_size_0`` ... ``video_size_5`` holds one chunk size in bytes per line, bitrate level K
(low to high). The released simulators play 48 chunks; the 49th line is only read as the "next chunk sizes"
look-ahead after the last chunk (NetLLM ``baseline_special/env.py``), so a file needs at least 49 lines.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from emu.validate import MAX_TRANSFER_BYTES

__all__ = ["BITRATES_KBPS", "CHUNK_S", "N_CHUNKS", "N_LEVELS", "Video", "load_video", "default_video_dir"]

BITRATES_KBPS = (300, 750, 1200, 1850, 2850, 4300)  # NetLLM baseline_special/utils/constants.py VIDEO_BIT_RATE
N_LEVELS = len(BITRATES_KBPS)
CHUNK_S = 4.0        # VIDEO_CHUNK_LEN = 4000 ms
N_CHUNKS = 48        # TOTAL_VIDEO_CHUNK
VIDEO_ENV = "EMU_ABR_VIDEO_DIR"


@dataclass(frozen=True)
class Video:
    """Chunk sizes ``sizes_bytes[level, chunk]`` (N_LEVELS x (N_CHUNKS + 1)); the last column is look-ahead only."""

    sizes_bytes: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        s = self.sizes_bytes
        if s.ndim != 2 or s.shape[0] != N_LEVELS or s.shape[1] < N_CHUNKS + 1:
            raise ValueError(f"sizes_bytes: must have shape ({N_LEVELS}, >= {N_CHUNKS + 1}), got {s.shape}")
        if (s <= 0).any():
            raise ValueError("sizes_bytes: every chunk size must be > 0")

    @property
    def bitrates_kbps(self) -> tuple[int, ...]:
        return BITRATES_KBPS

    def size(self, level: int, chunk: int) -> int:
        return int(self.sizes_bytes[level, chunk])


def default_video_dir(name: str = "video1") -> Path:
    """``$EMU_ABR_VIDEO_DIR`` if set, else ``../shared/abr/video-sizes/<name>_sizes`` beside the checkout."""
    env = os.environ.get(VIDEO_ENV)
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[3]
    for base in (root, Path.cwd()):
        candidate = base.parent / "shared" / "abr" / "video-sizes" / f"{name}_sizes"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "abr" / "video-sizes" / f"{name}_sizes"


def load_video(path: Optional[Union[str, os.PathLike]] = None) -> Video:
    """Read ``video_size_0`` ... ``video_size_5`` from ``path`` (default: ``default_video_dir()``).

    A name without a path separator that is not a folder ("video1", "video2") is looked up in the shared
    video-sizes folder. Raises FileNotFoundError / ValueError naming the folder, file and line at fault."""
    if path is None:
        folder = default_video_dir()
    else:
        folder = Path(path).expanduser()
        if not folder.is_dir() and os.sep not in str(path) and "/" not in str(path):
            folder = default_video_dir(str(path))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: video chunk-size folder not found (expected video_size_0 ... video_size_{N_LEVELS - 1}; "
            f"set {VIDEO_ENV} or pass video=PATH)")
    rows = []
    for level in range(N_LEVELS):
        f = folder / f"video_size_{level}"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: chunk-size file missing (one size in bytes per line)")
        sizes = []
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{f}: not a text file (undecodable byte at offset {exc.start})") from None
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = int(line.split()[0])
            except ValueError:
                raise ValueError(f"{f}:{line_no}: not an integer chunk size in bytes: {line!r}") from None
            if not 0 < value <= MAX_TRANSFER_BYTES:
                raise ValueError(f"{f}:{line_no}: chunk size must be > 0 and <= {MAX_TRANSFER_BYTES:g} bytes, "
                                 f"got {line.split()[0][:30]}")
            sizes.append(value)
        if len(sizes) < N_CHUNKS + 1:
            raise ValueError(f"{f}: {len(sizes)} chunk sizes; need at least {N_CHUNKS + 1} "
                             f"({N_CHUNKS} chunks + the look-ahead line)")
        rows.append(sizes[:N_CHUNKS + 1])
    return Video(np.asarray(rows, dtype=np.int64), source=str(folder))
