"""Model files of the ABR app: ``emu/models/abr/<name>.card.json`` beside the weights it lists.

Card schema ``emu.model-card/1``: ``name``, ``app``, ``files`` ({relpath: {sha256, bytes}}), ``config``,
``data``, ``seed``, ``steps``, ``metrics``, ``command``. Weights are loaded only after the hash check, with
``torch.load(weights_only=True)``. ``$EMU_MODELS_DIR/abr`` (or ``models_dir=``) overrides the folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

from emu.apps.model_files import sha256_file

__all__ = ["models_dir", "read_card", "checked_file", "load_state_dict", "write_card"]

SCHEMA = "emu.model-card/1"
APP = "abr"


def models_dir(override: Optional[Union[str, os.PathLike]] = None) -> Path:
    """``override``, else ``$EMU_MODELS_DIR/abr``, else the package's ``emu/models/abr``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("EMU_MODELS_DIR")
    if env:
        return Path(env).expanduser() / APP
    return Path(__file__).resolve().parents[2] / "models" / APP


def read_card(folder: Union[str, os.PathLike], name: str) -> dict:
    path = Path(folder) / f"{name}.card.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model card not found; rebuild it with `emu train {name}`")
    try:
        card = json.loads(path.read_text())
        if card["schema"] != SCHEMA or card["name"] != name:
            raise ValueError(f"schema/name: expected {SCHEMA!r}/{name!r}")
        for rel, meta in card["files"].items():
            meta["sha256"], meta["bytes"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: malformed model card ({type(exc).__name__}: {exc})") from None
    card["_dir"] = str(Path(folder))
    return card


def checked_file(card: dict, relpath: str) -> Path:
    """The path of ``relpath`` listed in ``card``, after checking it exists and its sha256 matches."""
    folder = Path(card["_dir"])
    if relpath not in card["files"]:
        raise ValueError(f"{folder / (card['name'] + '.card.json')}: lists no file {relpath!r}")
    path = folder / relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found; rebuild it with `emu train {card['name']}`")
    if sha256_file(path) != card["files"][relpath]["sha256"]:
        raise ValueError(f"{path}: sha256 does not match {card['name']}.card.json; the file was modified")
    return path


def load_state_dict(card: dict, relpath: str) -> dict:
    import torch

    path = checked_file(card, relpath)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types
        raise ValueError(f"{path}: not a weights file ({type(exc).__name__}: {exc})") from None


def write_card(folder: Union[str, os.PathLike], name: str, *, files: list[str], config: dict, data: dict,
               seed: int, steps: int, metrics: dict, command: str) -> Path:
    folder = Path(folder)
    card = {"schema": SCHEMA, "name": name, "app": APP,
            "files": {rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
                      for rel in files},
            "config": config, "data": data, "seed": seed, "steps": steps, "metrics": metrics, "command": command}
    path = folder / f"{name}.card.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
