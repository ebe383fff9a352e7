"""Collections API: a collector's queue, case detail with timeline, contact logging, dialling, promises.

Thin: reads through selectors, writes through services. The queryset is the user's visible cases, so a
case of another collector is simply not found (404).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from collections_app import selectors
from collections_app.models import ContactPerson
from collections_app.services import contacts, work
from collections_app.services.cases import CollectionsError, NotAllowed

from .permissions import CollectionsStaff
from .serializers import (
    CaseDetailSerializer,
    CaseListSerializer,
    ContactInSerializer,
    ContactOutSerializer,
    PromiseInSerializer,
)


def _refused(exc: Exception, code=status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"error": str(exc)}, status=status.HTTP_403_FORBIDDEN if isinstance(exc, NotAllowed) else code)


class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [CollectionsStaff]

    def get_queryset(self):
        if self.action == "list":
            return selectors.queue(self.request.user)
        return selectors.visible_cases(self.request.user).select_related("loan", "borrower")

    def get_serializer_class(self):
        return CaseListSerializer if self.action == "list" else CaseDetailSerializer

    def _contact_person(self, case, pk):
        return get_object_or_404(ContactPerson, pk=pk, borrower_id=case.borrower_id) if pk else None

    @action(detail=True, methods=["post"])
    def contacts(self, request, pk=None):
        """Log a contact; 201 when allowed, 409 naming the rule when refused (the refusal is logged too)."""
        case = self.get_object()
        data = ContactInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            attempt = contacts.record_contact(
                case=case, channel=v["channel"], outcome=v["outcome"], actor=request.user, target=v["target"],
                contact_person=self._contact_person(case, v.get("contact_person")),
                identity_stated=v["identity_stated"], discloses_debt=v["discloses_debt"], notes=v["notes"],
                override_reason=v["override_reason"])
        except CollectionsError as exc:
            return _refused(exc)
        return Response(ContactOutSerializer(attempt).data,
                        status=status.HTTP_201_CREATED if attempt.allowed else status.HTTP_409_CONFLICT)

    @action(detail=True, methods=["post"])
    def dial(self, request, pk=None):
        """The system dials: the full number goes to the softphone only when the rules allow the call."""
        case = self.get_object()
        try:
            attempt, number = contacts.dial(
                case=case, actor=request.user, target=request.data.get("target", "borrower"),
                contact_person=self._contact_person(case, request.data.get("contact_person")),
                override_reason=request.data.get("override_reason", ""))
        except CollectionsError as exc:
            return _refused(exc)
        body = {**ContactOutSerializer(attempt).data, "dial": number}
        return Response(body, status=status.HTTP_201_CREATED if attempt.allowed else status.HTTP_409_CONFLICT)

    @action(detail=True, methods=["post"])
    def promises(self, request, pk=None):
        case = self.get_object()
        data = PromiseInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            promise = work.make_promise(case=case, amount=v["amount"], due_date=v["due_date"], actor=request.user,
                                        on_date=v.get("on_date") or selectors.current_business_date())
        except CollectionsError as exc:
            return _refused(exc)
        return Response({"id": promise.pk, "amount": str(promise.amount), "due_date": promise.due_date,
                         "status": promise.status}, status=status.HTTP_201_CREATED)
