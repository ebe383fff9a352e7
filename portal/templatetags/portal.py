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


_urls: dict[tuple, str] = {}


@register.simple_tag
def purl(name, *args):
    """{% url %} for the fixed links of every page (header, footer), reversed once per process and script
    prefix: reversing costs more than rendering the rest of the header."""
    from django.urls import get_script_prefix, reverse

    key = (get_script_prefix(), name, *args)
    url = _urls.get(key)
    if url is None:
        url = _urls[key] = reverse(name, args=args or None)
    return url
