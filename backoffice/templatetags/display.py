from django import template

from backoffice import audit_display, useragent

register = template.Library()


@register.filter
def device(user_agent: str) -> str:
    """`{{ session.user_agent|device }}`: "Chrome on Linux"."""
    return useragent.describe(user_agent)


@register.filter
def detail_lines(event) -> list[str]:
    """`{% for line in event|detail_lines %}`: "first name: Ada → Augusta Ada"."""
    return audit_display.detail_lines(event.action, event.details)
