"""Quality and playback metrics.

Quality (GRACE's code: RGB SSIM with ``pytorch_msssim``, data_range 1, and PSNR; apps.md §3.5):

- ``ssim``: mean SSIM over the RGB channels (Gaussian window 11, sigma 1.5); ``ssim_db = -10 log10(1 - SSIM)``
  (average SSIM first, then dB, as GRACE's plots do).
- ``ms_ssim``: MS-SSIM with the default five scales and weights but a **7-tap** Gaussian window: pytorch_msssim
  asserts that the short side exceeds (win - 1) * 2**4 = 160 px for its default 11-tap window, and frames here
  are 128 px (the coarsest of the five scales is 8 x 8, which a 7-tap window still fits).
- ``psnr`` over RGB, peak 255.

Playback (apps.md §3.5 [DESIGN] definitions):

- frame delay: capture -> rendered, over rendered frames (p50 / p95 / mean); the evaluation measures frames
  captured after a warm-up (``GraceEvalConfig.warmup_s``: the first key frame's delivery and the catch-up after
  it) and reports the start-up delay separately;
- non-rendered frames: never shown (never decodable, or decoded after a later frame was already shown);
- stall: a gap between consecutive rendered frames (and from the last rendered frame to the end of the
  session; the start-up delay before the first frame is not a stall) longer than ``stall_threshold_s`` (200 ms; [RECALL] common choice, unverified) adds the gap minus
  one frame interval;
- bitrate: bytes sent by the sender (payload and per-packet headers, retransmissions and parity included) per
  second of video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STALL_THRESHOLD_S = 0.2
MS_SSIM_WIN = 7


def _pair(a: np.ndarray, b: np.ndarray):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    y = torch.from_numpy(np.ascontiguousarray(b)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    return x, y


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W, 3) frames (pytorch_msssim, data_range 1)."""
    from pytorch_msssim import ssim as _ssim

    x, y = _pair(a, b)
    return float(_ssim(x, y, data_range=1.0))


def ssim_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of two uint8 (T, H, W, 3) stacks."""
    import torch
    from pytorch_msssim import ssim as _ssim

    if len(a) == 0:
        return np.zeros(0)
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.from_numpy(np.ascontiguousarray(b)).permute(0, 3, 1, 2).float().div_(255.0)
    return _ssim(x, y, data_range=1.0, size_average=False).numpy().astype(float)


def ms_ssim_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame MS-SSIM (5 scales, 7-tap window; see the module docstring)."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    if len(a) == 0:
        return np.zeros(0)
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.from_numpy(np.ascontiguousarray(b)).permute(0, 3, 1, 2).float().div_(255.0)
    return _ms_ssim(x, y, data_range=1.0, size_average=False, win_size=MS_SSIM_WIN).numpy().astype(float)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def psnr_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(0)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    return 10.0 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


def ssim_to_db(value: float) -> float:
    """-10 log10(1 - SSIM) (GRACE's SSIM dB); SSIM 1 maps to 100 dB."""
    return float(-10.0 * np.log10(max(1e-10, 1.0 - value)))


@dataclass(frozen=True)
class Playback:
    startup_s: float
    frame_delay_p50_s: float
    frame_delay_p95_s: float
    frame_delay_mean_s: float
    non_rendered_frac: float
    stall_s: float
    stall_count: int


def playback(capture_s: np.ndarray, rendered_s: np.ndarray, end_s: float, frame_interval_s: float,
             stall_threshold_s: float = STALL_THRESHOLD_S, skip_startup: bool = False) -> Playback:
    """Delay, non-rendered fraction and stalls from capture times and render times (NaN = never rendered).

    ``end_s`` closes the session: a last gap from the last rendered frame to ``end_s`` counts as a stall too.
    ``skip_startup``: frames captured before the first frame is rendered (the start-up, reported as
    ``startup_s``) are left out of the delay percentiles (they still count as rendered or not).
    """
    capture_s = np.asarray(capture_s, dtype=float)
    rendered_s = np.asarray(rendered_s, dtype=float)
    if capture_s.shape != rendered_s.shape or capture_s.ndim != 1 or len(capture_s) == 0:
        raise ValueError("playback: capture_s and rendered_s must be 1-D arrays of the same non-zero length")
    shown = ~np.isnan(rendered_s)
    first = float(np.nanmin(rendered_s)) if shown.any() else float("nan")
    startup = first - capture_s[0] if shown.any() else float("nan")
    steady = shown & (capture_s >= first) if skip_startup and shown.any() else shown
    delay = rendered_s[steady] - capture_s[steady]
    if np.any(delay < -1e-12):
        raise ValueError("playback: a frame is rendered before it is captured")
    times = np.sort(rendered_s[shown])
    if len(times):
        gaps = np.diff(np.concatenate([times, [max(end_s, times[-1])]]))   # start-up delay is not a stall
        stalls = gaps[gaps > stall_threshold_s] - frame_interval_s
    else:
        stalls = np.array([max(0.0, end_s - capture_s[0])])
    nan = float("nan")
    return Playback(
        startup_s=startup,
        frame_delay_p50_s=float(np.quantile(delay, 0.5)) if len(delay) else nan,
        frame_delay_p95_s=float(np.quantile(delay, 0.95)) if len(delay) else nan,
        frame_delay_mean_s=float(np.mean(delay)) if len(delay) else nan,
        non_rendered_frac=float(1.0 - shown.mean()),
        stall_s=float(np.sum(stalls)),
        stall_count=len(stalls),
    )
