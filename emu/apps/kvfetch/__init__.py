"""kvfetch: CacheGen-style KV-cache streaming (Liu et al., SIGCOMM '24; arXiv 2310.07240) over the emulator.

A small decoder-only Transformer (``model``; config in ``lm_config``, weights in ``emu/models/kvfetch/``, loaded by
``weights``) produces real KV caches of held-out Debian prose (``emu.apps.textdata``); ``codec`` quantises them per
layer and arithmetic-codes them with ``constriction`` (plus 8-/4-bit uniform baselines); ``menu`` encodes every
chunk of a context with every option; ``quality`` measures how well the model continues from a decoded cache;
``app`` is the endpoint that streams the chunks from a server to a client while a ``controller`` picks each
chunk's level (or text); ``eval`` runs every scheme on identical conditions (``emu eval kvfetch``); ``spec``
registers it all.

torch is imported only by ``model``, ``quality``, ``train`` and the functions that need them: ``import emu`` and
importing ``spec``, ``app``, ``eval``, ``codec``, ``weights`` or ``lm_config`` never import it.
"""
