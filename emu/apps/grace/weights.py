"""Loading the committed codecs: model card JSON -> weights file -> sha256 check -> ``GraceCodec``.

``models/grace/<name>.json`` is the model card (data, seed, steps, metrics, config, ``weights`` file name and its
``sha256``); ``models/grace/<name>-<sha8>.pt`` is the state dict. Weights are read with
``torch.load(weights_only=True)`` only after the hash matches; nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

from emu.apps.artifacts import sha256_file

from emu.apps.artifacts import PACKAGED_MODELS  # noqa: E402
MODELS_DIR = PACKAGED_MODELS / "grace"
MODEL_NAMES = ("grace", "grace_nomask")


def card_path(name: str, models_dir: Path | None = None) -> Path:
    if name not in MODEL_NAMES:
        raise ValueError(f"model: unknown {name!r}; valid: {', '.join(MODEL_NAMES)}")
    return Path(models_dir or MODELS_DIR) / f"{name}.json"


def read_card(name: str, models_dir: Path | None = None) -> dict:
    """The model card of ``name``; FileNotFoundError / ValueError name the file."""
    path = card_path(name, models_dir)
    if not path.is_file():
        raise FileNotFoundError(f"weights: model card {path} is missing (run `emu train grace`)")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"weights: model card {path} is not valid JSON ({exc})") from exc
    for key in ("weights", "sha256", "config"):
        if key not in card:
            raise ValueError(f"weights: model card {path} has no {key!r} field")
    return card


def check_weights(name: str, models_dir: Path | None = None) -> Path:
    """Path of ``name``'s weights after checking that the file exists and matches the card's sha256."""
    card = read_card(name, models_dir)
    path = card_path(name, models_dir).parent / card["weights"]
    if not path.is_file():
        raise FileNotFoundError(f"weights: {path} (named by {card_path(name, models_dir)}) is missing")
    sha = sha256_file(path)
    if sha != card["sha256"]:
        raise ValueError(f"weights: {path} has sha256 {sha[:16]}..., but its model card records "
                         f"{card['sha256'][:16]}... (corrupt or replaced file)")
    return path


def load_model(name: str, models_dir: Path | None = None):
    """The hash-checked ``GraceCodec`` ``name`` in eval mode."""
    import torch

    from emu.apps.grace.net import CodecConfig, GraceCodec

    path = check_weights(name, models_dir)
    card = read_card(name, models_dir)
    try:
        config = CodecConfig.from_dict(card["config"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"weights: model card {card_path(name, models_dir)} has an invalid config ({exc})") from exc
    with torch.device("meta"):
        model = GraceCodec(config)
    model = model.to_empty(device="cpu")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise ValueError(f"weights: {path} cannot be loaded into the codec ({exc})") from exc
    model.check_tables()
    return model.eval()
