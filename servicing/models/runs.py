from django.db import models


class BusinessDayRun(models.Model):
    """One step of one business day: makes the day re-runnable and its timings visible."""

    business_date = models.DateField()
    step = models.CharField(max_length=40)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business_date", "step"], name="uniq_business_day_step")]
        ordering = ["-business_date", "started_at"]

    def __str__(self) -> str:
        return f"{self.business_date} {self.step}"
