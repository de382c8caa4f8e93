"""DroidSpeak (arXiv 2411.02820): fine-tuned agents of one base LM share KV caches, recomputing a few layers.

Modules, in import order: ``corpora`` (the agents' documentation families, no torch), ``variants`` (recipes,
cards, loading), ``train`` (``emu train droidspeak-variants``), ``mixing`` (cross-model cache with a recomputed
group, torch), ``profile`` (all contiguous groups, Pareto front, choice), ``train_profile`` (``emu train
droidspeak-profile``), ``transfer`` (per-layer coding and transfer plans, no torch), ``prepare`` (plans and
delivered quality per scheme), ``app`` (the endpoint), ``eval`` (``emu eval droidspeak``), ``spec``.
"""
