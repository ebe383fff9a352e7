from rest_framework import serializers

from collections_app import selectors
from collections_app.models import CaseEvent, Channel, CollectionCase, ContactAttempt, Outcome, Target


class CaseListSerializer(serializers.ModelSerializer):
    contract_no = serializers.CharField(source="loan.masked_contract_no")
    borrower = serializers.CharField(source="borrower.masked_name")
    phone = serializers.CharField(source="borrower.masked_phone")
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = CollectionCase
        fields = ["id", "contract_no", "borrower", "phone", "status", "pause_reason", "stage", "bucket", "dpd",
                  "overdue_total", "next_action_on", "priority", "reasons", "assigned_to"]

    def get_reasons(self, obj) -> list[dict]:
        return [{"signal": label, "points": points} for label, points in selectors.priority_reasons(obj)]


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)

    class Meta:
        model = CaseEvent
        fields = ["at", "business_date", "kind", "detail", "actor"]


class CaseDetailSerializer(CaseListSerializer):
    id_number = serializers.CharField(source="borrower.masked_id_number")
    timeline = EventSerializer(source="events", many=True, read_only=True)

    class Meta(CaseListSerializer.Meta):
        fields = [*CaseListSerializer.Meta.fields, "id_number", "opened_on", "overdue_principal", "overdue_interest",
                  "overdue_fee", "overdue_penalty", "overdue_compound", "broken_promises", "timeline"]


class ContactInSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    outcome = serializers.ChoiceField(choices=[c for c in Outcome.choices if c[0] not in ("refused", "pending")])
    target = serializers.ChoiceField(choices=Target.choices, default=Target.BORROWER)
    contact_person = serializers.IntegerField(required=False, allow_null=True)
    identity_stated = serializers.BooleanField(default=False)
    discloses_debt = serializers.BooleanField(default=False)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    override_reason = serializers.CharField(required=False, allow_blank=True, default="")


class ContactOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactAttempt
        fields = ["id", "channel", "target", "at", "outcome", "allowed", "refused_rule", "refusal_message",
                  "override_reason"]


class PromiseInSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    due_date = serializers.DateField()
    on_date = serializers.DateField(required=False)
