from django import template

from servicing.domain.money import format_cny

register = template.Library()


@register.filter
def cny(value):
    """¥1,234.56"""
    return format_cny(value)


@register.simple_tag
def lender_name():
    from django.conf import settings

    return getattr(settings, "REPAYDESK", {}).get("LENDER_NAME", "")
