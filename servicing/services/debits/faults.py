"""Fault injection for crash tests only: REPAYDESK_FAULT=<point>:<n> SIGKILLs this process at that point.

Unset in production (the variable is read at each point; nothing happens when it is absent).
"""

from __future__ import annotations

import os
import signal


def fault(point: str, n: int = 1) -> None:
    spec = os.environ.get("REPAYDESK_FAULT", "")
    if spec and spec == f"{point}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)
