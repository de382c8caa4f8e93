"""The committed language model, loaded through its model card (``emu/models/kvfetch/``; no torch at import).

- ``lm.pt``: the weights, a ``state_dict`` of float16 tensors (``torch.load(weights_only=True)``);
- ``tokenizer.json``: the byte-level BPE (``emu.apps.textdata``);
- ``lm.card.json``: the model card (``emu.model-card/1``: architecture config, data, seed, steps, metrics, the
  sha256 of both files). Every read goes through ``emu.apps.artifacts``, which checks the hashes and fails closed,
  naming the file, when the card or a file is missing, malformed or modified.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from emu.apps.artifacts import CardError, ModelCard, read_card
from emu.apps.kvfetch.lm_config import LMConfig

APP = "kvfetch"
CARD_NAME = "lm"                   # lm.card.json
WEIGHTS_FILE = "lm.pt"
TOKENIZER_FILE = "tokenizer.json"
TRAIN_COMMAND = "emu train lm"

PathLike = Union[str, Path]


def model_card(models_dir: Optional[PathLike] = None) -> ModelCard:
    """The model card (schema and architecture config validated); ``models_dir`` is the folder holding it."""
    card = read_card(APP, CARD_NAME, models_dir)
    lm_config(card)
    for rel in (WEIGHTS_FILE, TOKENIZER_FILE):
        if rel not in card.data["files"]:
            raise CardError(f"{card.path}: lists no {rel!r} (rebuild the model with `{TRAIN_COMMAND}`)")
    return card


def lm_config(card: ModelCard) -> LMConfig:
    try:
        return LMConfig(**card.config)
    except (TypeError, ValueError) as exc:
        raise CardError(f"{card.path}: field 'config' is not a model architecture ({exc})") from None


def check_model_files(models_dir: Optional[PathLike] = None) -> ModelCard:
    """Validate the card and the sha256 of weights and tokenizer without loading them; returns the card."""
    card = model_card(models_dir)
    card.verify()
    return card


def load_model(models_dir: Optional[PathLike] = None):
    """(model in eval mode, tokenizer, card) from ``models_dir`` (default: ``$EMU_MODELS_DIR/kvfetch`` or the
    packaged model)."""
    from emu.apps.kvfetch.model import TinyLM
    from emu.apps.textdata import load_tokenizer

    card = check_model_files(models_dir)
    state = card.load_state_dict(WEIGHTS_FILE)
    model = TinyLM(lm_config(card))
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise CardError(f"{card.file(WEIGHTS_FILE)}: weights do not fit the card's config ({exc})") from None
    model.eval()
    return model, load_tokenizer(card.file(TOKENIZER_FILE)), card
