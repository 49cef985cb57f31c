"""The logger adapters write with.

The gateway configures logging once for the whole process (JSON, personal
data masked in every line); an adapter only asks for a named logger, so its
lines go through the same processors without knowing how they are set up.
"""

from __future__ import annotations

from typing import Any

import structlog


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
