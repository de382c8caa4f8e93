"""ABR video streaming: a DASH-like player over the emulator, classic and learned bitrate policies, and NetLLM.

- ``video``: the chunk-size ladder (6 bitrates, 48 chunks of 4 s) read from ``../shared/abr/video-sizes``;
- ``qoe``: QoE_lin exactly as Pensieve / NetLLM compute it (first chunk skipped);
- ``chunk_sim``: the released chunk-level simulator's semantics (Pensieve ``env.py`` as copied by Genet/NetLLM);
- ``player``: the observation every policy sees (the 6x6 Pensieve state) and the per-chunk records;
- ``policies``: BBA, RobustMPC; ``pensieve`` and ``netllm`` hold the learned ones (torch, imported lazily);
- ``gym_env``: Gymnasium environments (chunk level and packet level);
- ``app`` / ``spec`` / ``eval``: the packet-level endpoint on the App contract and ``emu eval abr``.

Importing this package imports neither torch nor gymnasium. See ``docs/abr.md``.
"""
