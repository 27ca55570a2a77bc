"""Which peers are trusted proxies (`IAM_TRUSTED_PROXIES`): one judgment for
X-Forwarded-* (accounts.middleware.TrustedProxyMiddleware) and X-Request-ID
(iam.request_id)."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def parse_ip(value: str):
    """The address, an IPv4-mapped one (::ffff:10.0.0.1, as a dual-stack
    socket shows an IPv4 peer) as the IPv4 address it is; None if not one."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def trusted_proxies() -> set:
    """The addresses of `IAM_TRUSTED_PROXIES` (read when a middleware starts)."""
    return {ip for ip in map(parse_ip, settings.IAM_TRUSTED_PROXIES) if ip}


def from_trusted_proxy(request, trusted: set) -> bool:
    """Whether the peer that sent `request` is one of the `trusted` proxies,
    judged on the connection's own address (before TrustedProxyMiddleware
    replaced it with the client's)."""
    return bool(trusted) and parse_ip(request.META.get("REMOTE_ADDR", "")) in trusted
