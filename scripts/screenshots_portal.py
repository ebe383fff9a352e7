#!/usr/bin/env python
"""Regenerate docs/screenshots/portal-*.png: the self-service pages at phone size (390×844).

Runs a live server (Django's LiveServerThread, static files included) on a freshly seeded database of its
own and drives Debian's Chromium through Playwright:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/screens_portal   # dropped and re-created each run
    .venv/bin/python scripts/screenshots_portal.py [--out docs/screenshots]

The scenario (a borrower with a failed debit and two overdue instalments, a settled loan with its
certificate, a complaint) is built through the services, with the portal's date fixed to 2026-05-20.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def fresh_database() -> None:
    import psycopg

    url = urlparse(os.environ.get("DATABASE_URL", ""))
    name = url.path.lstrip("/")
    if not name or not (name.startswith("screens") or name.startswith("bench")):
        sys.exit("screenshots: set DATABASE_URL to a database of its own whose name starts with 'screens' "
                 "(it is dropped and re-created), e.g. postgres://postgres@127.0.0.1:5432/screens_portal")
    with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import django
    from django.conf import settings

    django.setup()
    settings.NOTICES = {"SYNC_DISPATCH": True,
                        "BACKENDS": {"sms": "notices.backends.memory.MemoryBackend",
                                     "email": "notices.backends.memory.MemoryBackend",
                                     "in_app": "notices.backends.in_app.InAppBackend",
                                     "letter": "notices.backends.memory.MemoryBackend"}}
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed():
    from django.db import transaction

    from portal import selectors
    from tests.factories import seed_reference_data
    from tests.test_portal_support import (
        TODAY,
        borrower_with_login,
        complaint_for,
        failed_debit,
        loan_with_mandate,
        pay_instalments,
        settle_with_certificate,
    )

    selectors.today = lambda: TODAY  # the demo's "today"
    seed_reference_data()
    with transaction.atomic():
        b = borrower_with_login()
        b.name = "王芳"
        b.save(update_fields=["name"])
        loan = loan_with_mandate(b)
        pay_instalments(loan, 2)
        debit = failed_debit(loan, retry_on=TODAY + timedelta(days=1))
        done = loan_with_mandate(b, product="instalment", principal="6000.00", months=6)
        pay_instalments(done, 3)
    settle_with_certificate(done, TODAY - timedelta(days=3))
    complaint_for(loan, subject="扣款失败但银行卡余额充足")
    return b, loan, debit, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("screenshots: /usr/bin/chromium is missing (apt-get install -y chromium)")
    fresh_database()
    setup_django()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread
    from playwright.sync_api import sync_playwright

    from tests.test_portal_support import PASSWORD

    b, loan, debit, done = seed()
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = []

    def shot(page, name):
        path = out / f"portal-{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
        page.goto(base + "/login/")
        shot(page, "01-login")
        page.fill("input[name=username]", b.phone)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        shot(page, "02-home")
        page.goto(f"{base}/loans/{loan.pk}/")
        shot(page, "03-loan")
        page.locator("[data-testid=timeline-debit]").first.scroll_into_view_if_needed()
        shot(page, "04-loan-timeline")
        page.goto(f"{base}/debits/{debit.pk}/")
        shot(page, "05-debit")
        page.goto(f"{base}/loans/{loan.pk}/auto-debit/cancel/")
        shot(page, "06-cancel-mandate")
        page.goto(f"{base}/loans/{loan.pk}/pay/")
        shot(page, "07-pay")
        page.check("input[value=overdue]")
        page.click("[data-testid=pay-submit]")
        page.wait_for_selector("[data-testid=pay-result]")
        shot(page, "08-pay-result")
        page.goto(f"{base}/loans/{done.pk}/")
        shot(page, "09-settled-certificate")
        page.goto(f"{base}/inbox/")
        shot(page, "10-inbox")
        page.goto(f"{base}/complaints/")
        page.click("ul.lines a >> nth=0")
        shot(page, "11-complaint")
        page.click("footer button[name=language]")  # English
        page.goto(base + "/")
        shot(page, "12-home-en")
        browser.close()
    server.terminate()
    for path in shots:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
