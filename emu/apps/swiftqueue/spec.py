"""The SwiftQueue app spec (``emu eval swiftqueue``, ``emu train swiftqueue``, ``install(net, "swiftqueue", ...)``).

Only names here: the app's modules (and torch, for the GRU) are imported when it is installed, evaluated or trained.
"""
from emu.apps.base import AppSpec

SPEC = AppSpec(
    name="swiftqueue",
    summary="per-packet L4S queue selection by predicted latency (SwiftQueue) vs per-flow marking",
    config="emu.apps.swiftqueue.endpoint:SwiftQueueConfig",
    # Keep in step with emu.apps.swiftqueue.policies.SCHEMES / EVAL_SCHEMES (tested).
    schemes=("swiftqueue", "perflow_l4s", "perflow_classic", "last_value", "ewma", "oracle", "gru", "linear",
             "random", "explore"),
    eval_schemes=("swiftqueue", "perflow_l4s", "perflow_classic", "last_value", "ewma", "oracle"),
    install="emu.apps.swiftqueue.endpoint:install",
    eval_config="emu.apps.swiftqueue.scenario:ScenarioConfig",
    evaluate="emu.apps.swiftqueue.eval:evaluate",
    trainers={"swiftqueue": "emu.apps.swiftqueue.pipeline:train_swiftqueue"},
    metrics=("p50_s", "p95_s", "p99_s", "p99_delivered_s", "loss_frac", "app_bps", "cross_bps", "l_share"),
    cli="emu.apps.swiftqueue.cli:CLI",
)
