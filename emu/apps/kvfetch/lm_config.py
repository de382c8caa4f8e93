"""Architecture of the kvfetch language model (no torch: cards, calibration and specs read it without the model)."""
from __future__ import annotations

from dataclasses import dataclass


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
