"""Staff roles as Django groups. One place names them; permissions are granted in ensure_roles()."""

from __future__ import annotations

OPERATIONS = "operations"
COLLECTOR = "collector"
SUPERVISOR = "supervisor"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = (OPERATIONS, COLLECTOR, SUPERVISOR, AUDITOR, ADMIN)


def has_role(user, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()


def ensure_roles() -> None:
    """Create the groups; each app adds its permissions to them in its own ensure function."""
    from django.contrib.auth.models import Group, Permission

    view_all = Permission.objects.filter(codename__startswith="view_")
    for name in ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        if name in (AUDITOR, SUPERVISOR, OPERATIONS, ADMIN):
            group.permissions.add(*view_all)
