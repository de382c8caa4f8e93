"""kvfetch: CacheGen-style KV-cache streaming (Liu et al., SIGCOMM '24; arXiv 2310.07240) over the emulator.

A small decoder-only Transformer (``model``, weights in ``models/kvfetch/``) produces real KV caches of held-out
text (``data``); ``codec`` quantises them per layer and arithmetic-codes them with ``constriction`` (plus 8-/4-bit
uniform baselines); ``quality`` measures how well the model continues from a decoded cache; ``app`` streams the
chunks of a cache from a server to a client across a trace-driven link while a ``controller`` picks each chunk's
level (or text); ``eval`` runs every scheme on identical conditions (``emu eval kvfetch``).

torch is imported only by ``model``, ``quality``, ``train`` and the functions that need them: ``import emu`` and
``import emu.apps.kvfetch.cli`` never import it.
"""
