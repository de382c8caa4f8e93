"""Skip mark of the kvfetch tests that need the Debian text the committed model was split from.

Only the text may be absent (it comes from Debian packages outside the project): a missing committed model is a
defect, so the model-dependent tests load it and fail, never skip."""
from __future__ import annotations

import pytest

from emu.apps.textdata import TEXT_SOURCES, text_available


def missing_text() -> str | None:
    """Why the text-dependent kvfetch tests cannot run here, or None when they can."""
    if not text_available():
        return f"the model's source text is not installed ({TEXT_SOURCES[0]})"
    return None


_MISSING = missing_text()
NEEDS_TEXT = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
