"""Password-login throttles in one cache round trip per check.

allauth's limiter keeps a list of timestamps per rate and guards it with a
cache lock: add lock, get, set, delete lock, four round trips per rate, so a
successful login (the "login" rate, two "login_failed" rates, and their
roll-back) cost 20 Redis calls, some 3 ms of worker CPU per login on our
2-vCPU machine (benchmarks/README.md). Here each rate is a pair of counters (this window and the one
before, weighted by how much of it still overlaps the sliding window), moved
with atomic increments: a check is one pipelined round trip on Redis, and
nothing needs a lock.

The semantics are allauth's: an attempt is counted before the password is
checked (so a burst of parallel guesses cannot slip past the limit), a
refused attempt is not counted, and a successful login takes its own
failure count back. Rates come from the same strings (`10/m/ip,5/5m/key`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext

from accounts.audit import channel_of
from iam import metrics

_RATE = re.compile(r"^(\d+)/(\d*)([smhd])(?:/(ip|key|user))?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    amount: int
    duration: int  # seconds
    per: str  # "ip" or "key"


@functools.cache
def parse_rates(spec: str | None) -> tuple[Rate, ...]:
    """allauth's rate syntax: `10/m/ip,5/5m/key` (amount / [n]unit / per)."""
    rates = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        match = _RATE.match(part)
        if match is None:
            raise ImproperlyConfigured(f"{part!r} is not a rate like 10/m/ip or 5/5m/key")
        amount, count, unit, per = match.groups()
        rates.append(Rate(int(amount), int(count or 1) * _UNIT[unit], per or "ip"))
    return tuple(rates)


def client_ip(request) -> str:
    """The client address (accounts.middleware put the real one here); an
    IPv6 client counts by its /64, as one host usually holds a whole one."""
    value = request.META.get("REMOTE_ADDR") or ""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return value
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@functools.cache
def _redis(location: str):
    """A redis-py client of our own on the cache's server (a pipeline needs
    the client; Django's cache API has no batch increment)."""
    import redis

    options = {
        k: v
        for k, v in settings.CACHES["default"].get("OPTIONS", {}).items()
        if k in ("socket_connect_timeout", "socket_timeout", "retry_on_error", "retry")
    }
    return redis.Redis.from_url(location, **options)


def _pipeline():
    location = settings.CACHES["default"]["LOCATION"]
    if isinstance(location, list | tuple):
        location = location[0]  # the primary: counters are written
    return _redis(location).pipeline(transaction=False)


@dataclass
class Hits:
    """Counters one attempt incremented, so a success can take them back."""

    keys: list[tuple[str, int]] = field(default_factory=list)  # (cache key, ttl)

    def rollback(self) -> None:
        _decrement(self.keys)


def consume(request, action: str, key: str | None = None) -> Hits | None:
    """Count an attempt against every rate of `action`; None when one of
    them is exhausted (and then nothing is counted)."""
    buckets = list(_buckets(request, action, key, time.time()))
    if not buckets:
        return Hits()
    counts = _increment(buckets)
    hits = Hits([(current, ttl) for current, _, _, _, ttl in buckets])
    for (_, _, weight, amount, _), (now_count, before_count) in zip(buckets, counts, strict=True):
        if before_count * weight + now_count > amount:
            hits.rollback()
            metrics.throttled(action, channel_of(request))
            return None
    return hits


def retry_after(action: str) -> int:
    """Seconds until a refused attempt is sure to be let through again: the
    longest window of the action's rates (the sliding window empties in it)."""
    return max((int(rate.duration) for rate in _rates(action)), default=60)


def wait_text(seconds: int) -> str:
    """`a minute`, `5 minutes`, `an hour`: a wait as people say it."""
    minutes = max(1, round(seconds / 60))
    if minutes % 60 == 0:
        hours = minutes // 60
        return gettext("an hour") if hours == 1 else gettext("%(count)d hours") % {"count": hours}
    return (
        gettext("a minute") if minutes == 1 else gettext("%(count)d minutes") % {"count": minutes}
    )


def account_key(email: str) -> str:
    """The per-account key of "login_failed": the address's comparison key
    (accounts.inputs), and not the host name (allauth adds it, which would
    give each allowed host name its own five guesses)."""
    from accounts.inputs import normalize_email

    return "account:" + normalize_email(email)


def clear(action: str, key: str) -> None:
    """Forget the per-key counts of `action` (after a password reset)."""
    now = time.time()
    stale = []
    for current, before, *_ in _buckets(None, action, key, now, per=("key",)):
        stale += [current, before]
    caches["default"].delete_many(stale)


def _rates(action: str):
    return parse_rates(settings.IAM_LOGIN_THROTTLES.get(action))


def _buckets(request, action, key, now, per=("ip", "key")):
    """(this window's key, the previous window's key, the previous window's
    weight, the limit, the counters' lifetime) for each rate."""
    for rate in _rates(action):
        if rate.per not in per:
            continue
        if rate.per == "ip":
            source = "ip:" + client_ip(request)
        elif rate.per == "key":
            if key is None:
                raise ImproperlyConfigured(f"throttle {action} is per key but no key was given")
            source = "key:" + hashlib.sha256(key.encode()).hexdigest()
        else:
            raise ImproperlyConfigured(f"throttle {action}: per {rate.per} is not supported")
        window, into = divmod(now, rate.duration)
        prefix = f"throttle:{action}:{rate.amount}/{rate.duration}:{source}:"
        yield (
            prefix + str(int(window)),
            prefix + str(int(window) - 1),
            1.0 - into / rate.duration,
            rate.amount,
            int(2 * rate.duration) + 1,
        )


def _increment(buckets) -> list[tuple[int, int]]:
    """Add one to each current window and read the previous ones."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        pipe = _pipeline()
        for current, before, _, _, ttl in buckets:
            pipe.incr(backend.make_and_validate_key(current))
            pipe.expire(backend.make_and_validate_key(current), ttl)
            pipe.get(backend.make_and_validate_key(before))
        replies = pipe.execute()
        return [(int(replies[i]), int(replies[i + 2] or 0)) for i in range(0, len(replies), 3)]
    counts = []
    for current, before, _, _, ttl in buckets:
        backend.add(current, 0, ttl)
        try:
            now_count = backend.incr(current)
        except ValueError:  # expired between add and incr
            backend.set(current, 1, ttl)
            now_count = 1
        counts.append((now_count, int(backend.get(before) or 0)))
    return counts


def _decrement(keys) -> None:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        pipe = _pipeline()
        for current, ttl in keys:
            # A counter that expired meanwhile comes back as -1: let it go.
            pipe.decr(backend.make_and_validate_key(current))
            pipe.expire(backend.make_and_validate_key(current), ttl)
        pipe.execute()
        return
    for current, _ in keys:
        with contextlib.suppress(ValueError):  # the window expired: nothing to take back
            backend.decr(current)
