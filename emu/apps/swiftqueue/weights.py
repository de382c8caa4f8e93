"""The committed weights: read through the model card, hash-checked, turned into predictors.

``emu/models/swiftqueue/swiftqueue.card.json`` is an ``emu.model-card/1`` card (``emu.apps.artifacts``): ``files``
lists ``linear.npy``, ``gru.pt`` and ``transformer.pt`` with their sha256; ``config`` holds the GRU's and the
Transformer's architecture (``config.gru``, ``config.transformer``), the training settings and the marking policy
chosen at training time (``config.policy``: ``margin_s``, ``gate_s``). Every file is read through the card, which
checks its hash before anything is deserialised (torch files with ``torch.load(weights_only=True)``, ``.npy`` with
``allow_pickle=False``); a missing card or file fails closed, naming it. ``EMU_MODELS_DIR`` or ``models_dir``
(``--models-dir``) replaces the packaged folder, e.g. with the output of ``emu train swiftqueue --out DIR``.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from emu.apps.artifacts import CardError, ModelCard, read_card as _read_card
from emu.apps.swiftqueue.inference import NumpyTransformer
from emu.apps.swiftqueue.predictors import (
    EwmaPredictor, LastValuePredictor, LinearARPredictor, PREDICTORS, Predictor, TorchPredictor,
)

APP = "swiftqueue"
CARD = "swiftqueue"     # <models dir>/swiftqueue.card.json
FILES = {"linear": "linear.npy", "gru": "gru.pt", "transformer": "transformer.pt"}
LEARNED = tuple(FILES)

ModelsDir = Union[str, os.PathLike, None]


def read_card(models_dir: ModelsDir = None) -> ModelCard:
    """The validated model card (``CardError`` naming the file when it is missing or malformed)."""
    return _read_card(APP, CARD, models_dir)


def _state_dict(card: ModelCard, name: str) -> dict:
    state = card.load_state_dict(FILES[name])
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise CardError(f"{card.dir / FILES[name]}: malformed weights file (not a state dict of tensors)")
    return state


def load_torch_model(name: str, models_dir: ModelsDir = None) -> Any:
    """The torch module of ``name`` ("transformer" or "gru") with its committed weights, in eval mode."""
    from emu.apps.swiftqueue.model import build

    if name not in ("gru", "transformer"):
        raise ValueError(f"torch model: {name!r} is not one; valid: gru, transformer")
    card = read_card(models_dir)
    state = _state_dict(card, name)
    model = build(name, card.config.get(name))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CardError(f"{card.dir / FILES[name]}: weights do not fit the {name} architecture in the card "
                        f"({exc})") from None
    return model.eval()


def load_predictor(name: str, models_dir: ModelsDir = None, backend: str = "numpy") -> Predictor:
    """A predictor with committed weights: ``"linear"`` (numpy), ``"gru"`` (torch), ``"transformer"`` (numpy
    inference, ``emu.apps.swiftqueue.inference``, by default; ``backend="torch"`` for the torch module)."""
    if name not in LEARNED:
        raise ValueError(f"predictor: {name!r} has no weights; learned predictors: {', '.join(LEARNED)}")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: must be 'numpy' or 'torch', got {backend!r}")
    card = read_card(models_dir)
    if name == "linear":
        path = card.file(FILES[name])
        try:
            return LinearARPredictor(np.load(path, allow_pickle=False))
        except Exception as exc:  # noqa: BLE001 - any failure to read or fit means a malformed file
            raise CardError(f"{path}: malformed weights file ({type(exc).__name__}: {exc})") from None
    if name == "transformer" and backend == "numpy":
        state = _state_dict(card, name)
        try:
            return NumpyTransformer.from_state_dict({k: v.numpy() for k, v in state.items()},
                                                    card.config.get(name, {}))
        except (KeyError, ValueError) as exc:
            raise CardError(f"{card.dir / FILES[name]}: weights do not fit the transformer architecture in the "
                            f"card ({exc})") from None
    return TorchPredictor(load_torch_model(name, models_dir), name)


def make_predictor(name: str, models_dir: ModelsDir = None) -> Predictor:
    """A predictor by name (``predictors.PREDICTORS``); learned ones load through the card in ``models_dir``."""
    if name == "last":
        return LastValuePredictor()
    if name == "ewma":
        return EwmaPredictor()
    if name in LEARNED:
        return load_predictor(name, models_dir)
    raise ValueError(f"predictor: unknown {name!r}; valid: {', '.join(PREDICTORS)}")


def decision_margin_s(models_dir: ModelsDir = None) -> float:
    """The marking margin chosen at training time (card ``config.policy.margin_s``)."""
    return float(_policy(models_dir)["margin_s"])


def decision_gate_s(models_dir: ModelsDir = None) -> Optional[float]:
    """The cascade gate of the card (``config.policy.gate_s``; None = always run the model)."""
    gate = _policy(models_dir).get("gate_s")
    return None if gate is None else float(gate)


def _policy(models_dir: ModelsDir) -> dict:
    card = read_card(models_dir)
    policy = card.config.get("policy")
    if not isinstance(policy, dict) or not isinstance(policy.get("margin_s"), (int, float)):
        raise CardError(f"{card.path}: config.policy.margin_s missing (rebuild with {card['command']})")
    return policy
