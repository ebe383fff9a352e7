from django.db import models
from django.utils.translation import gettext_lazy as _


class BusinessCalendarDay(models.Model):
    """China's working days: weekends, statutory holidays and make-up working days (调休).

    Seeded from chinesecalendar / holidays; ops edit it in the admin when the State Council publishes
    next year's arrangement. Days of a year not officially loaded are marked provisional.
    """

    class Source(models.TextChoices):
        CHINESECALENDAR = "chinesecalendar", "chinesecalendar"
        HOLIDAYS = "holidays", "holidays (CN)"
        WEEKENDS = "weekends", _("仅周末（推测）")
        MANUAL = "manual", _("人工维护")

    date = models.DateField(primary_key=True)
    is_working_day = models.BooleanField()
    name = models.CharField(max_length=64, blank=True, help_text=_("节假日或调休名称"))
    source = models.CharField(max_length=20, choices=Source.choices)
    provisional = models.BooleanField(default=False, help_text=_("该年度官方安排尚未载入，结果为推测"))

    class Meta:
        verbose_name = _("工作日历")
        verbose_name_plural = _("工作日历")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {'working' if self.is_working_day else 'holiday'}"
