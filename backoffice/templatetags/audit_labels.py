"""The audit trail's stable action codes, named in the reader's language."""

from django import template

from accounts.audit import action_label as label_of

register = template.Library()


@register.filter
def action_label(code: str) -> str:
    return label_of(code)
