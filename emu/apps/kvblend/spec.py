"""The kvblend app on the App contract (no torch at import)."""
from __future__ import annotations

from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="kvblend",
    summary="CacheBlend: reuse non-prefix chunk KV caches with selective recompute, fetched layer by layer",
    config="emu.apps.kvblend.app:KVBlendConfig",
    schemes=("cacheblend", "cacheblend_adaptive", "full_recompute", "prefix_reuse", "full_reuse"),
    install="emu.apps.kvblend.app:install",
    eval_config="emu.apps.kvblend.eval:KVBlendEvalConfig",
    evaluate="emu.apps.kvblend.eval:evaluate",
    metrics=("ttft_s", "quality_loss_pct", "top1_agreement", "recompute_frac", "bytes"),
)
