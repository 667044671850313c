"""The name a dispatcher or planner holds its leases under."""

from __future__ import annotations

import os
import socket
import uuid


def new_worker_id() -> str:
    """An id naming this process in leases (host, pid, and a random part for uniqueness)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
