"""Model artifacts: one card schema, one loader, one place on disk (no torch at import).

Every committed model or data file of an app lives in ``emu/models/<app>/`` (package data, so a non-editable
install keeps it) next to its card ``<name>.card.json``::

    {"schema": "emu.model-card/1", "name": "lm", "app": "kvfetch",
     "files": {"lm.pt": {"sha256": "…", "bytes": 6895317}},
     "config": {...}, "data": {...}, "seed": 0, "steps": 12000, "metrics": {...},
     "command": "emu train lm", ...any further keys the app keeps}

Loading goes through the card: ``card.file(name)`` checks the file's sha256 (and fails closed, naming the file,
when it or the card is missing or differs); ``card.load_state_dict(name)`` then reads it with
``torch.load(weights_only=True)``. ``EMU_MODELS_DIR`` (a folder holding ``<app>/`` folders) or an explicit
``models_dir`` replaces the packaged models, e.g. for freshly trained ones.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

SCHEMA = "emu.model-card/1"
MODELS_ENV = "EMU_MODELS_DIR"
PACKAGED_MODELS = Path(__file__).resolve().parent.parent / "models"

PathLike = Union[str, os.PathLike]


class CardError(ValueError):
    """A model card or one of its files is missing, malformed or does not match its recorded hash."""


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the hash every model card records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def models_root(override: Optional[PathLike] = None) -> Path:
    """The folder holding one ``<app>/`` folder per app: ``override``, else ``$EMU_MODELS_DIR``, else the packaged
    models."""
    if override is not None:
        return Path(override)
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else PACKAGED_MODELS


def models_dir(app: str, override: Optional[PathLike] = None) -> Path:
    """The folder of ``app``'s models. ``override`` is that folder itself (``--models-dir``); without it,
    ``$EMU_MODELS_DIR/<app>`` or the packaged ``emu/models/<app>``."""
    if override is not None:
        return Path(override)
    return models_root() / app


_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (str,), "name": (str,), "app": (str,), "files": (dict,), "config": (dict,), "data": (dict, str),
    "seed": (int,), "steps": (int, type(None)), "metrics": (dict,), "command": (str,),
}


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def validate_card(data: Any, where: str) -> dict:
    """Check a card field by field; raise ``CardError`` naming the card and the field."""
    if not isinstance(data, dict):
        raise CardError(f"{where}: a model card must be a JSON object, got {type(data).__name__}")
    for key, types in _REQUIRED.items():
        if key not in data:
            raise CardError(f"{where}: missing field {key!r}")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise CardError(f"{where}: field {key!r} must be {names}, got {value!r:.60}")
    if data["schema"] != SCHEMA:
        raise CardError(f"{where}: schema {data['schema']!r} is not {SCHEMA!r}")
    if data["seed"] < 0 or (data["steps"] is not None and data["steps"] < 0):
        raise CardError(f"{where}: seed and steps must be >= 0")
    if not data["files"]:
        raise CardError(f"{where}: field 'files' lists no file")
    for rel, entry in data["files"].items():
        if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or ".." in Path(rel).parts:
            raise CardError(f"{where}: files: {rel!r} must be a relative path inside the card's folder")
        if not isinstance(entry, dict) or not _is_hex64(entry.get("sha256")):
            raise CardError(f"{where}: files[{rel!r}].sha256 must be 64 lower-case hex digits")
        size = entry.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CardError(f"{where}: files[{rel!r}].bytes must be an integer >= 0")
    for key, value in data["metrics"].items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CardError(f"{where}: metrics[{key!r}] is not finite")
    return data


@dataclass
class ModelCard:
    """A validated card and the folder its files live in."""

    path: Path
    data: dict
    _verified: set = field(default_factory=set, repr=False)

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def file(self, rel: str) -> Path:
        """The path of listed file ``rel`` after checking its size and sha256 against the card."""
        entry = self.data["files"].get(rel)
        if entry is None:
            raise CardError(f"{self.path}: lists no file {rel!r} (files: {', '.join(self.data['files'])})")
        path = self.dir / rel
        if rel not in self._verified:
            if not path.is_file():
                raise CardError(f"{path}: missing (listed in {self.path.name})")
            if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
                raise CardError(f"{path}: does not match the sha256 recorded in {self.path.name} "
                                "(modified or corrupt; rebuild it with " + self.data["command"] + ")")
            self._verified.add(rel)
        return path

    def verify(self) -> None:
        """Check every listed file."""
        for rel in self.data["files"]:
            self.file(rel)

    def load_state_dict(self, rel: str) -> Any:
        """``torch.load(weights_only=True)`` of listed file ``rel`` after the hash check (tensors only)."""
        path = self.file(rel)
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a file that passed the hash but is not a tensor archive
            raise CardError(f"{path}: cannot be read as weights ({type(exc).__name__}: {exc})") from None

    def read_json(self, rel: str) -> Any:
        """A listed JSON file, hash-checked."""
        path = self.file(rel)
        try:
            return json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardError(f"{path}: not valid JSON ({exc})") from None


def card_path(app: str, name: str, models_dir_override: Optional[PathLike] = None) -> Path:
    return models_dir(app, models_dir_override) / f"{name}.card.json"


def read_card(app: str, name: str, models_dir_override: Optional[PathLike] = None) -> ModelCard:
    """The card ``<models dir of app>/<name>.card.json``, validated (fails closed when it is missing)."""
    return read_card_file(card_path(app, name, models_dir_override))


def read_card_file(path: PathLike) -> ModelCard:
    path = Path(path)
    if not path.is_file():
        raise CardError(f"{path}: model card not found (models are loaded only through their cards)")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"{path}: not valid JSON ({exc})") from None
    return ModelCard(path, validate_card(data, str(path)))


def write_card(out_dir: PathLike, name: str, *, app: str, files: list[str], config: dict, data: Union[dict, str],
               seed: int, steps: Optional[int], metrics: dict, command: str, **extra: Any) -> Path:
    """Hash ``files`` (relative to ``out_dir``) and write ``<name>.card.json`` there; returns its path."""
    out = Path(out_dir)
    card = {
        "schema": SCHEMA, "name": name, "app": app,
        "files": {rel: {"sha256": sha256_file(out / rel), "bytes": (out / rel).stat().st_size} for rel in files},
        "config": config, "data": data, "seed": int(seed), "steps": None if steps is None else int(steps),
        "metrics": metrics, "command": command, **extra,
    }
    path = out / f"{name}.card.json"
    validate_card(json.loads(json.dumps(card, default=str)), str(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def list_cards(root: Optional[PathLike] = None) -> list[ModelCard]:
    """Every card under the models root (``emu models``), sorted by app and name; malformed ones raise."""
    base = models_root(root)
    return [read_card_file(p) for p in sorted(base.glob("*/*.card.json"))]
