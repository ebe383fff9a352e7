from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.Model):
    """A bank or payment channel with its file profile (layouts are data, not code)."""

    class Kind(models.TextChoices):
        BANK = "bank", _("银行代扣")
        GATEWAY = "gateway", _("支付网关")

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BANK)
    profile = models.JSONField(default=dict, blank=True, help_text=_("银行文件格式（JSON v1）"))
    profile_version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("渠道")
        verbose_name_plural = _("渠道")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"
