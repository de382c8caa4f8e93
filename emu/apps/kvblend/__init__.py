"""kvblend: CacheBlend (Yao et al., EuroSys '25) on the kvfetch language model, over the emulator.

``blend`` holds the blend pass (per-chunk caches with K before RoPE, selective recompute at a check layer);
``probe`` measures what reuse costs in quality; the network part streams chunk caches layer by layer from a KV
store across a trace-driven link while the receiver recomputes (``pipeline``, ``controller``, ``app``); ``eval``
compares CacheBlend with its baselines (``emu eval kvblend``).

torch is imported only by ``blend``, ``probe`` and the functions that need them.
"""
