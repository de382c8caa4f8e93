"""SwiftQueue: per-packet L4S queue selection by predicted latency (Ray et al., arXiv 2410.06112).

A real-time UDP flow marks each packet ECT(1) (DualPI2 L queue) or ECT(0) (C queue) by which queue a small
Transformer predicts to be faster, from the latencies its ACKs reported. See docs/swiftqueue.md.

Modules: ``app`` (sender, receiver), ``scenario``, ``features``, ``collector``, ``dataset``, ``predictors``,
``model`` (torch), ``weights`` (card, loader, numpy inference), ``policies``, ``eval``, ``train``, ``pipeline``,
``cli``. Importing this package (or ``cli``) does not import torch.
"""
