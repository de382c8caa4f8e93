"""The ABR app's spec (no torch, no heavy imports): ``emu eval abr``, ``emu train pensieve|netllm|...``."""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="abr",
    summary="ABR video streaming: BBA, RobustMPC, Pensieve and NetLLM (DT + LoRA on the project's LM) over traces",
    config="emu.apps.abr.app:AbrConfig",
    schemes=("bba", "mpc", "pensieve", "netllm", "netllm_random", "dt_scratch"),
    install="emu.apps.abr.app:install",
    eval_config="emu.apps.abr.eval:AbrEvalConfig",
    evaluate="emu.apps.abr.eval:evaluate",
    trainers={"pensieve": "emu.apps.abr.train:train_pensieve",
              "netllm": "emu.apps.abr.train:train_netllm_pretrained",
              "netllm_random": "emu.apps.abr.train:train_netllm_random",
              "dt_scratch": "emu.apps.abr.train:train_dt_scratch"},
    metrics=("qoe", "bitrate_mbps", "rebuffer_s", "smooth_mbps", "n_traces"),
)
