"""Django's database sessions with a cheaper read (SESSION_ENGINE = "portal.sessions").

Every logged-in page reads its session. Django's `db` backend does that with an ORM query built and planned
anew on each request (about as much CPU as the borrower's whole home page query). This backend is the same
store — same table, same rows, same expiry test (``expire_date > now``), same logout and flush — and only
the read is a fixed statement, prepared once per connection. Writes, creation, deletion and
``clearsessions`` are Django's own.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.db import router
from django.utils import timezone


class SessionStore(DbSessionStore):
    _sql: str | None = None

    def load(self):
        key = self.session_key
        if not key:
            self._session_key = None
            return {}
        from . import selectors

        model = self.model
        if SessionStore._sql is None:
            SessionStore._sql = (f"SELECT session_data FROM {model._meta.db_table} "
                                 "WHERE session_key = %s AND expire_date > %s")
        with selectors.prepared_cursor(router.db_for_read(model)) as cur:
            cur.execute(SessionStore._sql, [key, timezone.now()])
            row = cur.fetchone()
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])
