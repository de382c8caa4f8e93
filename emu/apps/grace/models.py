"""The committed codecs, loaded only through their model cards (``emu.apps.artifacts``).

``emu/models/grace/<name>.card.json`` (schema ``emu.model-card/1``) lists the state dict ``<name>-<sha8>.pt`` with
its sha256 and records the codec's ``config`` (``CodecConfig``), data, seed, steps and metrics, among them the
measured CPU times of the codec and of x265 (``timing_ms``, ``h265_timing_ms``) that the emulator charges per
frame. ``load_model`` checks the hash, reads the weights with ``torch.load(weights_only=True)`` and builds the
codec; a missing or tampered card or file fails closed, naming it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from emu.apps.artifacts import CardError, ModelCard, read_card

APP = "grace"
MODEL_NAMES = ("grace", "grace_nomask")


def codec_card(name: str, models_dir: Optional[Union[str, Path]] = None) -> ModelCard:
    """The validated card of codec ``name`` (``grace`` or ``grace_nomask``)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"model: unknown {name!r}; valid: {', '.join(MODEL_NAMES)}")
    return read_card(APP, name, models_dir)


def weights_file(card: ModelCard) -> str:
    """The card's weights file (its one ``.pt`` entry)."""
    files = [rel for rel in card["files"] if rel.endswith(".pt")]
    if len(files) != 1:
        raise CardError(f"{card.path}: expected one .pt file in 'files', got {files}")
    return files[0]


def check_model(name: str, models_dir: Optional[Union[str, Path]] = None) -> ModelCard:
    """The card of ``name`` after checking that its weights exist and match the recorded sha256 (no torch)."""
    card = codec_card(name, models_dir)
    card.file(weights_file(card))
    return card


def load_model(name: str, models_dir: Optional[Union[str, Path]] = None):
    """The hash-checked ``GraceCodec`` ``name`` in eval mode."""
    import torch

    from emu.apps.grace.net import CodecConfig, GraceCodec

    card = codec_card(name, models_dir)
    try:
        config = CodecConfig.from_dict(card.config)
    except (TypeError, KeyError, ValueError) as exc:
        raise CardError(f"{card.path}: invalid codec config ({exc})") from None
    state = card.load_state_dict(weights_file(card))
    with torch.device("meta"):
        model = GraceCodec(config)
    model = model.to_empty(device="cpu")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise CardError(f"{card.file(weights_file(card))}: does not fit the codec ({exc})") from None
    model.check_tables()
    return model.eval()
