"""The demo context shared by each app's part of `seed_demo`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date


@dataclass
class DemoContext:
    as_of: date
    rng: random.Random
    loans: list = field(default_factory=list)  # servicing.Loan objects booked by the core part
    staff: dict = field(default_factory=dict)  # role -> User
    borrower_logins: list = field(default_factory=list)  # (phone, password, name)
    lines: list[str] = field(default_factory=list)  # what seed_demo prints at the end (URLs, highlights)
    password: str = "demo-pass-2026"
