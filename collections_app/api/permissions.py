from rest_framework.permissions import SAFE_METHODS, BasePermission

from collections_app.services.cases import can_access_case
from servicing import roles


class CollectionsStaff(BasePermission):
    """Collectors, supervisors, admins and auditors; each case only if `can_access_case` (the queryset is
    already limited, so another collector's case is a 404, not a 403)."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return roles.has_role(request.user, roles.COLLECTOR, roles.SUPERVISOR, roles.ADMIN, roles.AUDITOR)
        return roles.has_role(request.user, roles.COLLECTOR, roles.SUPERVISOR, roles.ADMIN)  # auditors read only

    def has_object_permission(self, request, view, obj):
        return can_access_case(request.user, obj)
