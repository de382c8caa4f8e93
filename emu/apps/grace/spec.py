"""The Grace++ app's entry in the registry (no heavy imports: every part is a lazy reference)."""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="grace",
    summary="loss-resilient neural video: Grace++ vs H.265 retransmission / FEC / freeze",
    config="emu.apps.grace.endpoint:GraceConfig",
    schemes=("grace", "grace_nomask", "h265_retx", "h265_fec20", "h265_fec50", "h265_freeze"),
    install="emu.apps.grace.endpoint:install",
    eval_config="emu.apps.grace.eval:GraceEvalConfig",
    evaluate="emu.apps.grace.eval:evaluate",
    trainers={"grace": "emu.apps.grace.train:train_command"},
    metrics=("ssim_db", "frame_delay_p95_s", "non_rendered_frac", "stall_s", "kbps"),
)
