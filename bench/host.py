"""The description of the machine every service bench writes next to its numbers."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def describe(note: str, **extra: Any) -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
        # The machine may be shared: the load before the run says how much.
        "load_avg_1m": os.getloadavg()[0],
        "note": note,
    }
