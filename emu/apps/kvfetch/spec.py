"""The kvfetch app's spec (no torch, no heavy imports: every part is a lazy ``"module:attribute"`` reference)."""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="kvfetch",
    summary="KV-cache streaming (CacheGen): adaptive levels or text against quantisation and text recompute",
    config="emu.apps.kvfetch.app:KVFetchConfig",
    schemes=("cachegen", "code_rule", "quant8", "quant4", "text", "level0", "level1", "level2", "level3"),
    install="emu.apps.kvfetch.app:install",
    eval_config="emu.apps.kvfetch.eval:KVFetchEvalConfig",
    evaluate="emu.apps.kvfetch.eval:evaluate",
    trainers={"lm": "emu.apps.kvfetch.train:train_lm"},
    metrics=("ttft_s", "ttft_p95_s", "sent_bytes", "ppl_increase_pct", "slo_met"),
)
