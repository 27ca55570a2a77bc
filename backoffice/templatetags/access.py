from django import template

from accounts.access import can as _can

register = template.Library()


@register.filter
def can(user, resource: str) -> bool:
    """`{% if user|can:"backoffice:users:edit" %}`: show only what works."""
    return _can(user, resource)
