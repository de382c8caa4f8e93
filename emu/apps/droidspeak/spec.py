"""The droidspeak app's spec (no torch, no heavy imports: every part is a lazy ``"module:attribute"`` reference)."""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="droidspeak",
    summary="cross-agent KV reuse (DroidSpeak): fine-tuned agents share a context's cache, recomputing a profiled "
            "layer group",
    config="emu.apps.droidspeak.app:DroidSpeakConfig",
    schemes=("droidspeak", "full_prefill", "full_reuse", "full_reuse_compressed", "random_group"),
    install="emu.apps.droidspeak.app:install",
    eval_config="emu.apps.droidspeak.eval:DroidSpeakEvalConfig",
    evaluate="emu.apps.droidspeak.eval:evaluate",
    trainers={"droidspeak-variants": "emu.apps.droidspeak.train:train_variants",
              "droidspeak-profile": "emu.apps.droidspeak.train_profile:train_profile"},
    metrics=("ttft_s", "prefill_speedup", "quality_loss_pct", "top1_agreement", "bytes"),
)
