"""The agents: the kvfetch base LM and its fine-tuned variants, loaded through their model cards (no torch at import).

Every agent has the base's architecture and tokenizer (``emu/models/kvfetch/``); a variant differs only in its
weights, fine-tuned on one documentation family (``corpora.py``) by ``emu train droidspeak-variants``
(``train.py``). Files in ``emu/models/droidspeak/``: ``<name>.pt`` (float16 ``state_dict``) and
``<name>.card.json`` (``emu.model-card/1``; sha256 checked on load, ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from emu.apps.artifacts import CardError, ModelCard, read_card
from emu.validate import check_int

APP = "droidspeak"
BASE = "base"
TRAIN_COMMAND = "emu train droidspeak-variants"

PathLike = Union[str, Path]


@dataclass(frozen=True)
class VariantRecipe:
    """How one agent is fine-tuned from the base: full fine-tuning, AdamW, cosine decay to 10 %."""

    name: str
    corpus: str
    steps: int
    lr: float
    batch: int = 4
    seq_len: int = 256
    warmup: int = 20
    weight_decay: float = 0.0
    clip: float = 1.0

    def __post_init__(self) -> None:
        for f in ("steps", "batch", "seq_len", "warmup"):
            check_int(f, getattr(self, f), lo=1)
        if not 0 < self.lr < 1:
            raise ValueError(f"lr: must be in (0, 1), got {self.lr!r}")


# Two gentle fine-tunes (a learning rate 1/10 of the base's, as fine-tunes usually run far below pre-training
# rates) and one hard one: the changelog agent runs at 1.5x the base's rate, so that every pair with it is
# strongly diverged while (man, copyright) stays a close pair.
RECIPES: dict[str, VariantRecipe] = {
    "man": VariantRecipe("man", "man", steps=150, lr=2e-4),
    "changelog": VariantRecipe("changelog", "changelog", steps=200, lr=3e-3),
    "copyright": VariantRecipe("copyright", "copyright", steps=150, lr=2e-4),
}
VARIANTS: tuple[str, ...] = tuple(RECIPES)
AGENTS: tuple[str, ...] = (BASE,) + VARIANTS


def check_agent(name: str, what: str = "agent") -> str:
    if name not in AGENTS:
        raise ValueError(f"{what}: unknown agent {name!r}; valid: {', '.join(AGENTS)}")
    return name


def parse_pair(pair: str) -> tuple[str, str]:
    """``"sender,receiver"`` -> (sender, receiver): two different known agents."""
    if not isinstance(pair, str) or pair.count(",") != 1:
        raise ValueError(f"pair: expected 'SENDER,RECEIVER' (agents: {', '.join(AGENTS)}), got {pair!r}")
    sender, receiver = (s.strip() for s in pair.split(","))
    check_agent(sender, "pair: sender")
    check_agent(receiver, "pair: receiver")
    if sender == receiver:
        raise ValueError(f"pair: sender and receiver must differ, got {pair!r}")
    return sender, receiver


def variant_card(name: str, models_dir: Optional[PathLike] = None) -> ModelCard:
    card = read_card(APP, name, models_dir)
    if f"{name}.pt" not in card.data["files"]:
        raise CardError(f"{card.path}: lists no {name}.pt (rebuild with `{TRAIN_COMMAND}`)")
    return card


def check_agent_files(names, models_dir: Optional[PathLike] = None) -> None:
    """Validate the cards and hashes of ``names`` (and the base) without loading weights."""
    from emu.apps.kvfetch.weights import check_model_files

    check_model_files()
    for name in names:
        if name != BASE:
            variant_card(name, models_dir).verify()


def load_agent(name: str, models_dir: Optional[PathLike] = None):
    """(model in eval mode, tokenizer) of agent ``name``: the base LM or a variant's weights in its architecture."""
    from emu.apps.kvfetch.model import TinyLM
    from emu.apps.kvfetch.weights import load_model

    check_agent(name)
    base, tokenizer, card = load_model()
    if name == BASE:
        return base, tokenizer
    vcard = variant_card(name, models_dir)
    state = vcard.load_state_dict(f"{name}.pt")
    model = TinyLM(base.cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise CardError(f"{vcard.file(name + '.pt')}: weights do not fit the base architecture ({exc})") from None
    model.eval()
    return model, tokenizer
