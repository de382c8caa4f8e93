"""Skip mark of the kvfetch tests that need the committed model and the held-out text it was split from."""
from __future__ import annotations

import pytest

from emu.apps.artifacts import card_path
from emu.apps.kvfetch.weights import APP, CARD_NAME
from emu.apps.textdata import TEXT_SOURCES, text_available


def missing_model_or_text() -> str | None:
    """Why the model-dependent kvfetch tests cannot run here, or None when they can."""
    if not card_path(APP, CARD_NAME).is_file():
        return "committed model missing"
    if not text_available():
        return f"the model's source text is not installed ({TEXT_SOURCES[0]})"
    return None


_MISSING = missing_model_or_text()
NEEDS_MODEL_AND_TEXT = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
