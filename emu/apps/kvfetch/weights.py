"""The committed model's files and their checks (no torch at import): ``models/kvfetch/``.

- ``lm.pt``: the weights, a ``state_dict`` of float16 tensors, loaded with ``torch.load(weights_only=True)``;
- ``tokenizer.json``: the byte-level BPE (``tokenizers`` library);
- ``lm.card.json``: the model card (architecture config, data, seed, steps, metrics) with the sha256 of both
  files. ``check_model_files`` validates card, presence and hashes and raises an error naming the file at fault;
  ``load_model`` does that, then builds the model from the card's config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from emu.apps.artifacts import sha256_file

from emu.apps.artifacts import PACKAGED_MODELS  # noqa: E402
MODEL_DIR = PACKAGED_MODELS / "kvfetch"
WEIGHTS_NAME = "lm.pt"
CARD_NAME = "lm.card.json"
TOKENIZER_NAME = "tokenizer.json"


@dataclass(frozen=True, kw_only=True)
class LMConfig:
    """Architecture of the decoder-only Transformer (``emu.apps.kvfetch.model.TinyLM``)."""

    vocab_size: int = 4096
    n_layers: int = 6
    d_model: int = 192
    n_heads: int = 4
    d_ff: int = 768
    rope_dims: int = 24          # rotated dims per head (of d_model / n_heads); partial rotary as GPT-NeoX
    rope_base: float = 10000.0   # RoFormer (Su et al. 2021)
    train_len: int = 1024        # training sequence length (recorded; contexts may be longer)
    max_len: int = 16384         # positions the RoPE tables cover
    token_shift: bool = False    # add a linear map of the previous token's embedding to each input (RWKV-style)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layers", "d_model", "n_heads", "d_ff", "train_len", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model: must be a multiple of n_heads={self.n_heads}, got {self.d_model}")
        if not isinstance(self.token_shift, bool):
            raise ValueError(f"token_shift: must be True or False, got {self.token_shift!r}")
        head = self.d_model // self.n_heads
        if not (isinstance(self.rope_dims, int) and 0 <= self.rope_dims <= head and self.rope_dims % 2 == 0):
            raise ValueError(f"rope_dims: must be an even integer in [0, {head}], got {self.rope_dims!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_channels(self) -> int:
        return self.d_model


def read_card(model_dir: Path = MODEL_DIR) -> dict:
    """The model card of ``model_dir``; FileNotFoundError / ValueError naming it when missing or malformed."""
    card_path = Path(model_dir) / CARD_NAME
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path}: model card not found; rebuild the model with `emu train lm`")
    try:
        card = json.loads(card_path.read_text())
        LMConfig(**card["config"])
        card["sha256"]["weights"], card["sha256"]["tokenizer"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{card_path}: malformed model card ({type(exc).__name__}: {exc})") from None
    return card


def check_model_files(model_dir: Optional[Path] = None) -> dict:
    """Validate the card, weights and tokenizer of ``model_dir`` (hashes included) without loading them.

    Raises FileNotFoundError / ValueError naming the file at fault; returns the card."""
    model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model folder not found; rebuild the model with `emu train lm`")
    card = read_card(model_dir)
    for key, name in (("weights", WEIGHTS_NAME), ("tokenizer", TOKENIZER_NAME)):
        path = model_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {key} file not found; rebuild the model with `emu train lm`")
        if sha256_file(path) != card["sha256"][key]:
            raise ValueError(f"{path}: sha256 does not match {CARD_NAME}; the {key} file was modified or corrupted")
    return card


def load_model(model_dir: Optional[Path] = None):
    """(model in eval mode, tokenizer, card) from ``model_dir``; hashes checked, ``weights_only=True``."""
    import torch

    from emu.apps.kvfetch.data import load_tokenizer
    from emu.apps.kvfetch.model import TinyLM

    model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
    card = check_model_files(model_dir)
    cfg = LMConfig(**card["config"])
    try:
        state = torch.load(model_dir / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types
        raise ValueError(f"{model_dir / WEIGHTS_NAME}: not a weights file ({type(exc).__name__}: {exc})") from None
    model = TinyLM(cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise ValueError(f"{model_dir / WEIGHTS_NAME}: weights do not fit the card's config ({exc})") from None
    model.eval()
    return model, load_tokenizer(model_dir / TOKENIZER_NAME), card
