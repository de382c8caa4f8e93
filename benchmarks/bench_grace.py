"""Grace++ codec speed on CPU: encode and decode frames per second at 128 x 128, against x265/HEVC via PyAV.

    python benchmarks/bench_grace.py                # table
    python benchmarks/bench_grace.py --json         # one JSON object
    python benchmarks/bench_grace.py --frames 60 --threads 1 --rate-point 2

Frames: the held-out carphone clip (128 x 128). Neural encode = analysis transform + rounding + packetisation
(K independent range-coded packets of at most 200 bytes); neural decode = range decoding of every packet +
synthesis transform. Each frame is coded against the previous *true* frame, so no drift enters the timing.
x265: preset veryfast, tune zerolatency, ABR at 200 kbit/s, one frame per call; HEVC decode through PyAV.
Each timing is the best of ``--repeats`` passes (the least disturbed by other load on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench_neural(frames, q: int, repeats: int, name: str = "grace") -> dict:
    from emu.apps.grace.codec import NeuralCodec, to_tensor
    from emu.apps.grace.models import load_model

    codec = NeuralCodec(load_model(name))
    refs = [to_tensor(f) for f in frames[:-1]]
    best_enc = best_dec = float("inf")
    size = 0
    for _ in range(repeats):
        encoded = []
        t0 = time.perf_counter()
        for t in range(1, len(frames)):
            sym = codec.latent(frames[t], refs[t - 1], q)
            encoded.append(codec.packetise(sym, q, t, 200))
        t1 = time.perf_counter()
        for t, enc in enumerate(encoded, start=1):
            got, _ = codec.depacketise(dict(enumerate(enc.packets)), enc.n_packets, q, t, enc.symbols.shape)
            codec.reconstruct(got, refs[t - 1], q)
        t2 = time.perf_counter()
        best_enc, best_dec = min(best_enc, t1 - t0), min(best_dec, t2 - t1)
        size = sum(e.size_bytes for e in encoded) / len(encoded)
    n = len(frames) - 1
    return {"encode_fps": n / best_enc, "decode_fps": n / best_dec, "bytes_per_frame": size,
            "packets_per_frame": sum(e.n_packets for e in encoded) / n}


def bench_x265(frames, fps: float, repeats: int) -> dict:
    from emu.apps.grace.h265 import HevcDecoder, X265Encoder

    best_enc = best_dec = float("inf")
    size = 0.0
    for _ in range(repeats):
        enc = X265Encoder(frames.shape[2], frames.shape[1], fps, 200e3)
        t0 = time.perf_counter()
        data = [enc.encode(f)[0] for f in frames]
        t1 = time.perf_counter()
        dec = HevcDecoder()
        for d in data:
            dec.decode(d)
        t2 = time.perf_counter()
        best_enc, best_dec = min(best_enc, t1 - t0), min(best_dec, t2 - t1)
        size = sum(len(d) for d in data[1:]) / (len(data) - 1)
    return {"encode_fps": len(frames) / best_enc, "decode_fps": len(frames) / best_dec, "bytes_per_frame": size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    ap.add_argument("--rate-point", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from emu.apps.grace.data import load_clip

    torch.set_num_threads(args.threads)
    clip = load_clip("carphone", max_frames=args.frames)
    out = {
        "frame_size": list(clip.frames.shape[1:3]),
        "frames": len(clip),
        "threads": args.threads,
        "grace": bench_neural(clip.frames, args.rate_point, args.repeats),
        "x265": bench_x265(clip.frames, clip.fps, args.repeats),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"CPU, {out['frame_size'][0]}x{out['frame_size'][1]}, {out['frames']} frames, torch threads {args.threads}")
    print(f"{'codec':<8}{'encode fps':>14}{'decode fps':>14}{'bytes/frame':>14}")
    for name in ("grace", "x265"):
        row = out[name]
        print(f"{name:<8}{row['encode_fps']:>14.1f}{row['decode_fps']:>14.1f}{row['bytes_per_frame']:>14.0f}")
    print(f"ratio grace/x265: encode {out['grace']['encode_fps'] / out['x265']['encode_fps']:.2f}, "
          f"decode {out['grace']['decode_fps'] / out['x265']['decode_fps']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
