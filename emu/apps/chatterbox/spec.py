"""The Chatterbox app's entry in the registry (no heavy imports: every part is a lazy reference)."""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="chatterbox",
    summary="LLM token streaming: stream vs duplicate vs chatterbox",
    config="emu.apps.chatterbox.app:ChatterboxConfig",
    schemes=("chatterbox", "stream", "duplicate"),
    install="emu.apps.chatterbox.app:install",
    eval_config="emu.apps.chatterbox.eval:ChatterboxEvalConfig",
    evaluate="emu.apps.chatterbox.eval:evaluate",
    trainers={"chatterbox-tokens": "emu.apps.chatterbox.corpus:train_tokens"},
    metrics=("stall_ratio", "token_delay_p99_s", "ttft_s", "bytes_per_token"),
    eval_schemes=("stream", "duplicate", "chatterbox"),
)
