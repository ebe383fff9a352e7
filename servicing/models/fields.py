from decimal import Decimal

from django.db import models


class MoneyField(models.DecimalField):
    """CNY to the fen: numeric(18, 2). Values are quantized HALF_UP by services before saving."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("default", Decimal("0.00"))
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


class RateField(models.DecimalField):
    """A rate in percent with four decimals (4.9000 = 4.9 %)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("default", Decimal("0"))
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs
