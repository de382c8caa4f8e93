"""SwiftQueue: per-packet L4S queue selection by predicted latency (Ray et al., arXiv 2410.06112).

A real-time UDP flow marks each packet ECT(1) (DualPI2 L queue) or ECT(0) (C queue) by which queue a small
Transformer predicts to be faster, from the latencies its ACKs reported. See docs/swiftqueue.md.

Modules, in import order (each imports only those before it): ``features``; ``predictors`` (``last``, ``ewma``,
linear AR, torch wrapper; online batch builder); ``inference`` (the Transformer in numpy); ``model`` (torch);
``weights`` (model card, hash-checked loaders, ``make_predictor``); ``policies`` (the schemes, ``make_policy``);
``app`` (sender, receiver); ``endpoint`` (``SwiftQueueConfig``, the App-contract endpoint, ``install``);
``scenario`` (the evaluation network); ``collector``, ``dataset``; ``eval``; ``train``, ``pipeline``
(``emu train swiftqueue``); ``cli`` (``emu eval swiftqueue --predictors``); ``spec`` (the ``AppSpec``).
Importing this package, ``spec`` or ``cli`` does not import torch.
"""
