"""Applications known to the command line: each entry names a module with ``add_eval_parser(subparsers)``
(for ``emu eval <app>``) and ``TRAINERS`` (``{name: "module:function"}`` for ``emu train <name>``).

Modules are imported when the parser is built, so they must not import torch at module level.
"""
from __future__ import annotations

APP_CLI_MODULES: dict[str, str] = {
    "chatterbox": "emu.apps.chatterbox.cli",
    "swiftqueue": "emu.apps.swiftqueue.cli",
    "grace": "emu.apps.grace.cli",
    "kvfetch": "emu.apps.kvfetch.cli",
}
