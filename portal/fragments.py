"""Rendered page bodies kept per process, keyed by everything they are computed from.

The home and loan pages read their data as one JSON document from PostgreSQL (portal/selectors.py). The
body rendered from it is a pure function of: the document's text, the borrower's date, the active
language, and the business calendar (grace periods roll to working days). So the key is exactly that
(the document as its 128-bit BLAKE2b digest),
and there is nothing to invalidate: after a payment, a debit result, a retry, a mandate change or a
business day the document differs and the old entry is simply never asked for again (and ages out of
the LRU). Nothing per request or per session is in a body (no CSRF token, no messages, no name).

``PORTAL_FRAGMENT_CACHE`` (environment) sets the number of entries per process; 0 turns it off (the
benchmark uses that to measure the uncached path).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

SIZE = int(os.environ.get("PORTAL_FRAGMENT_CACHE", "2048"))  # ≈ 7 kB a loan page: ≤ 15 MB a process

_lock = threading.Lock()
_entries: OrderedDict[tuple, Any] = OrderedDict()
stats = {"hits": 0, "misses": 0}


def digest(doc: str) -> bytes:
    """128-bit BLAKE2b of the document: the key without keeping the document itself."""
    return hashlib.blake2b(doc.encode(), digest_size=16).digest()


def calendar_stamp() -> float:
    """Changes whenever this process reloads the business calendar (TTL, admin edit, tests)."""
    from servicing.services import calendar

    calendar._table()  # noqa: SLF001 - load (or reuse) the per-process copy the figures will use
    return calendar._cache_loaded_at  # noqa: SLF001


def get_or_render(key: tuple, render: Callable[[], Any]) -> Any:
    """The cached value for `key`, or render() stored under it (a rendered body: str or a tuple of str)."""
    if SIZE <= 0:
        return render()
    with _lock:
        html = _entries.get(key)
        if html is not None:
            _entries.move_to_end(key)
            stats["hits"] += 1
            return html
    html = render()
    with _lock:
        stats["misses"] += 1
        _entries[key] = html
        while len(_entries) > SIZE:
            _entries.popitem(last=False)
    return html


def clear() -> None:
    with _lock:
        _entries.clear()
