"""Grace++: loss-resilient neural video (Cheng et al., "GRACE", NSDI '24; arXiv 2305.12333).

A small P-frame neural codec (conditional residual autoencoder, factorised learned entropy model, arithmetic
coding with ``constriction``), trained with random masking of latent elements so that a frame decodes from any
non-empty subset of its packets; baselines are H.265 (x265 through PyAV) with retransmission, Reed-Solomon FEC
or freeze, and the same neural codec trained without masking. See ``docs/grace.md``.

Importing this package (or its ``spec``) imports neither torch nor PyAV: the modules that need them (``net``,
``codec``, ``h265``, ``train``) import them when they are loaded, and ``endpoint``, ``models`` and ``eval`` load
those lazily. ``install(net, "grace", src=..., dst=..., scheme=...)`` puts one call on any network
(``endpoint.py``); ``emu eval grace`` compares the six schemes (``eval.py``).
"""
