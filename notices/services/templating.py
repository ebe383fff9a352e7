"""Notice wording: `{{ name }}` placeholders only — no logic, no attribute access, nothing a staff edit
can break at send time. Validation names every unknown variable; rendering refuses a missing one."""

from __future__ import annotations

import re

from notices.catalog import event_spec

PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
BRACES = re.compile(r"{{|}}|{%|%}")


class TemplateError(ValueError):
    """A template that cannot be rendered: unknown/missing variable or malformed placeholder."""


def variables_in(text: str) -> list[str]:
    """The placeholders of `text`; a stray `{{`, `}}` or `{% … %}` is an error."""
    leftover = PLACEHOLDER.sub("", text)
    if BRACES.search(leftover):
        raise TemplateError("malformed placeholder: write variables as {{ name }} (no tags, filters or dots)")
    return PLACEHOLDER.findall(text)


def validate(event: str, *texts: str) -> None:
    """Raise TemplateError naming the variables the event does not provide."""
    allowed = set(event_spec(event).all_variables)
    unknown: list[str] = []
    for text in texts:
        for name in variables_in(text):
            if name not in allowed and name not in unknown:
                unknown.append(name)
    if unknown:
        raise TemplateError(f"unknown variable(s) {', '.join(unknown)} for event {event}; "
                            f"available: {', '.join(sorted(allowed))}")


def render(text: str, context: dict) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in context:
            raise TemplateError(f"variable '{name}' is missing from the notice context")
        return str(context[name])

    return PLACEHOLDER.sub(sub, text)
