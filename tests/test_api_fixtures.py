"""Shared fixtures for the API, permission, console and export tests (imported with `from … import *`).

Role users are staff members of exactly one role group, with an API token each.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from servicing import roles
from servicing.services.mandates import activate_mandate, sign_mandate
from tests.factories import book, channel, seed_reference_data

__all__ = ["ROLE_NAMES", "api", "api_as", "loan", "reference", "role_users", "staff"]

ROLE_NAMES = roles.ROLES


@pytest.fixture
def reference(db):
    cache.clear()  # throttle buckets
    return seed_reference_data()


@pytest.fixture
def role_users(reference):
    roles.ensure_roles()
    try:  # the collections app adds its own permissions to the groups when it is there
        from collections_app.services.cases import ensure_roles as collections_roles

        collections_roles()
    except ImportError:
        pass
    from django.contrib.auth.models import Group

    users = {}
    for name in ROLE_NAMES:
        user = get_user_model().objects.create_user(f"{name}_user", password="x-Secret-123", is_staff=True)
        user.groups.add(Group.objects.get(name=name))
        users[name] = user
    return users


def staff(role_users, role: str):
    return role_users[role]


def api_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(role_users):
    return api_as(role_users[roles.OPERATIONS])


@pytest.fixture
def loan(reference):
    loan = book("car", "12000.00", 12, date(2026, 1, 10))
    m = sign_mandate(loan=loan, channel=channel(), account_no="6222020200112233", account_name=loan.borrower.name,
                     bank_code="ICBC")
    activate_mandate(m)
    return loan
