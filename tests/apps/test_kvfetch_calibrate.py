"""The receiver's served-model scaling (pure arithmetic, no torch)."""
from __future__ import annotations

import pytest

from emu.apps.kvfetch.calibrate import LONGCHAT_7B, prefill_flops_per_kv_element, served_model_scale
from emu.apps.kvfetch.lm_config import LMConfig


def test_longchat_flops_per_kv_element():
    # 2 * 6.74e9 + 2 * 32 * 4096 * 2048 FLOPs per token over 2 * 32 * 4096 KV elements per token.
    expected = (2 * 6.74e9 + 2 * 32 * 4096 * 2048) / (2 * 32 * 4096)
    assert prefill_flops_per_kv_element(**LONGCHAT_7B, context_tokens=2048) == pytest.approx(expected)
    assert 50e3 < expected < 56e3


def test_small_model_recompute_is_cheaper_per_kv_element():
    cfg = LMConfig()
    scale = served_model_scale(cfg, params=3_443_136, context_tokens=2048)
    assert 0.05 < scale < 0.15
    # Longer contexts add attention work to both, but the ratio stays below 1.
    assert served_model_scale(cfg, params=3_443_136, context_tokens=8192) < 1
