"""The description of the machine every service bench writes next to its numbers."""

from __future__ import annotations

import os
import platform
from typing import Any

from pasrec.training.machine import cpu_model


def describe(note: str, **extra: Any) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
        # The machine may be shared: the load before the run says how much.
        "load_avg_1m": os.getloadavg()[0],
        "note": note,
    }
