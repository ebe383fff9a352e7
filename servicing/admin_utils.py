"""Shared pieces of the ops console (Django admin): money display, personal-data masking, cheap counts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.utils.functional import cached_property

from servicing.domain.money import format_cny

logger = logging.getLogger(__name__)

__all__ = [
    "ESTIMATE_THRESHOLD",
    "BigTableAdminMixin",
    "EstimatedCountPaginator",
    "PersonalDataAdminMixin",
    "ReadOnlyAdminMixin",
    "ReadOnlyInlineMixin",
    "PERSONAL_DATA_PERMISSION",
    "can_see_personal_data",
    "estimated_row_count",
    "log_personal_data_view",
    "money_display",
]


# --------------------------------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------------------------------

def money_display(field: str, label, *, ordering: str | None | bool = True) -> Callable:
    """A ``list_display`` / ``readonly_fields`` callable showing ``obj.<field>`` as ¥1,234.56.

    ``field`` may be a model field or any attribute/property (``total_outstanding``); it is the sort
    key unless ``ordering`` is given (a string) or False (not sortable: a property has no column).
    Works both as a free function in ``list_display`` and as a ModelAdmin/inline class attribute
    (then Python passes the admin first; the object is always the last argument).
    """

    def display(*args):
        value = getattr(args[-1], field)
        return format_cny(value() if callable(value) else value)

    sort = field if ordering is True else (ordering or None)
    display.__name__ = f"{field}_cny"
    display.__qualname__ = display.__name__
    return admin.display(description=label, ordering=sort)(display)


def pct_display(value: Decimal | None) -> str:
    """4.9000 -> '4.90 %'."""
    return "—" if value is None else f"{value.quantize(Decimal('0.01'))} %"


# --------------------------------------------------------------------------------------------------
# Personal data
# --------------------------------------------------------------------------------------------------

#: The capability "查看完整个人信息（身份证、手机号、账号），每次查看留痕" (console.models.CAPABILITIES;
#: granted to roles in servicing.roles.MATRIX as ``PERSONAL``).
PERSONAL_DATA_PERMISSION = "console.view_personal_data"


def can_see_personal_data(request) -> bool:
    """May this user see full phone / ID / account numbers (change pages only; lists are always masked)?

    The one place the rule lives: superusers and holders of :data:`PERSONAL_DATA_PERMISSION`.
    (Until that permission existed this was a placeholder on ``servicing.view_borrower``, which every
    role with "view everything" holds, auditors included, who must see masked data.)
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_active:
        return False
    return user.is_superuser or user.has_perm(PERSONAL_DATA_PERMISSION)


def log_personal_data_view(request, model, object_id, fields) -> None:
    """Every view of full personal data leaves a trace (每次查看留痕) in the audit log."""
    from servicing.models import AuditLog

    user = request.user
    AuditLog.objects.create(
        actor=user if getattr(user, "pk", None) else None, actor_label="admin",
        action="personal_data.view", object_type=model._meta.label_lower, object_id=str(object_id)[:64],
        data={"fields": list(fields), "path": request.path[:200]},
    )


class PersonalDataAdminMixin:
    """Replace personal fields by masked read-only displays for users who may not see them.

    ``personal_fields`` maps a model field to the name of a display callable on the admin (or an
    attribute of the model) that shows it masked, e.g. ``{"phone": "phone_masked"}``. For users passing
    :func:`can_see_personal_data` the change page shows the real field; for the others the real field
    is neither shown nor part of the form (so it cannot be read from the HTML or overwritten).
    """

    personal_fields: dict[str, str] = {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if (request.method == "GET" and self.personal_fields and getattr(response, "status_code", None) == 200
                and can_see_personal_data(request)):
            log_personal_data_view(request, self.model, object_id, sorted(self.personal_fields))
        return response

    def _mask_names(self, names):
        out, seen = [], set()
        for name in names:
            if isinstance(name, list | tuple):
                mapped = tuple(self.personal_fields.get(n, n) for n in name)
                out.append(mapped)
                seen.update(mapped)
                continue
            name = self.personal_fields.get(name, name)
            if name not in seen:
                out.append(name)
                seen.add(name)
        return out

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if can_see_personal_data(request) or not self.personal_fields:
            return fieldsets
        return [(title, {**opts, "fields": self._mask_names(opts.get("fields", ()))})
                for title, opts in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if can_see_personal_data(request):
            return readonly
        return readonly + [m for m in self.personal_fields.values() if m not in readonly]


# --------------------------------------------------------------------------------------------------
# Read-only (ledger) admins
# --------------------------------------------------------------------------------------------------

class ReadOnlyAdminMixin:
    """No add, change or delete from the admin: money moves only through services.

    The change page still opens (view-only) for users with the view permission.
    """

    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInlineMixin(ReadOnlyAdminMixin):
    """A view-only inline: every listed field (display callables included) is read-only."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.fields:
            readonly += [f for f in flatten_fieldsets([(None, {"fields": self.fields})]) if f not in readonly]
        return readonly


# --------------------------------------------------------------------------------------------------
# Big tables: no unfiltered COUNT(*)
# --------------------------------------------------------------------------------------------------

#: Below this estimate the paginator counts exactly (cheap, and the user sees a true number).
ESTIMATE_THRESHOLD = 10_000


def estimated_row_count(model: type[Model], using: str = "default") -> int | None:
    """PostgreSQL's planner estimate of a table's rows (``pg_class.reltuples``), or None.

    None when unknown: not PostgreSQL, or the table was never vacuumed/analysed (reltuples = -1 since
    PostgreSQL 14). Tests fake a large table by patching this function
    (``servicing.admin_utils.estimated_row_count``).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                       [connection.ops.quote_name(model._meta.db_table)])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def _is_unfiltered(queryset: QuerySet) -> bool:
    query = queryset.query
    return (not query.where and not query.distinct and query.low_mark == 0 and query.high_mark is None
            and not query.combinator and not getattr(query, "extra", None))


class EstimatedCountPaginator(Paginator):
    """Admin paginator that does not ``SELECT COUNT(*)`` a whole big table.

    Unfiltered queryset (no WHERE) and a planner estimate above :data:`ESTIMATE_THRESHOLD`: the count
    is the estimate (page links may be off by a few percent; that is accepted for a changelist).
    Anything filtered (search, list_filter) or small: the exact count. Pair it with
    ``show_full_result_count = False``, or the changelist runs its own unfiltered COUNT(*).
    """

    estimate_threshold = ESTIMATE_THRESHOLD

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet) and _is_unfiltered(object_list):
            try:
                estimate = estimated_row_count(object_list.model, object_list.db)
            except Exception:  # a broken estimate must never break the page
                logger.exception("row estimate failed for %s", object_list.model._meta.db_table)
                estimate = None
            if estimate is not None and estimate > self.estimate_threshold:
                return estimate
        return super().count


class BigTableAdminMixin:
    """For tables that grow to millions of rows: estimated counts and no full-count query."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice over the table
    list_per_page = 50
