"""Screenshots of the console pages → docs/screenshots/console-*.png (Debian chromium via Playwright).

    createdb -h 127.0.0.1 -U postgres bench_screens
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_screens .venv/bin/python scripts/screenshots_console.py

Fills the (dedicated, 'bench…'-named) database with the benchmark's synthetic rows (small N), refreshes the
summaries, starts `manage.py runserver` on a free port, logs in a superuser by session cookie and shoots
each page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _roll_months() -> None:
    """Move some loans between buckets month to month, so the roll-rate chart has something to show."""
    from datetime import date

    from django.db import connection

    from bench.admin_pages import AS_OF
    from console.services import summaries

    with connection.cursor() as cur:
        cur.execute("UPDATE servicing_loan SET dpd = 0, status = 'active' WHERE status = 'overdue'")
    summaries.refresh_dpd(date(2025, 12, 31))
    steps = [(date(2026, 1, 31), 11), (date(2026, 2, 28), 13), (AS_OF, 17)]
    for d, k in steps:
        with connection.cursor() as cur:
            cur.execute("UPDATE servicing_loan SET dpd = dpd + 30, status = 'overdue' WHERE dpd > 0 AND id % 3 <> 0")
            cur.execute("UPDATE servicing_loan SET dpd = 0, status = 'active' WHERE dpd > 0 AND id % 3 = 0")
            cur.execute("UPDATE servicing_loan SET dpd = 5, status = 'overdue' WHERE dpd = 0 AND status = 'active' "
                        "AND id %% %s = 0", [k])
        summaries.refresh_dpd(d)


def main() -> int:
    from bench.admin_pages import AS_OF, load, refresh
    from bench.common import guard_database, setup_django

    guard_database()
    setup_django()
    load(int(os.environ.get("SCREEN_ROWS", "3000")))
    refresh()
    _roll_months()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from console.views import PAGES

    user, _ = get_user_model().objects.get_or_create(username="screens", defaults={"is_staff": True,
                                                                                   "is_superuser": True})
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    port = free_port()
    env = {**os.environ, "DEBUG": "true", "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        from playwright.sync_api import sync_playwright

        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key,
                              "domain": "127.0.0.1", "path": "/"}])
            page = ctx.new_page()
            shots = [("index", "/admin/console/")] + [(pg.slug, f"/admin/console/{pg.slug}/?date={AS_OF}")
                                                      for pg in PAGES]
            for name, url in shots:
                page.goto(f"http://127.0.0.1:{port}{url}")
                page.wait_for_load_state("networkidle")
                path = OUT / f"console-{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path.relative_to(ROOT))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
