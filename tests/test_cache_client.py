"""The guard of iam.cache, a patch kept by measurement: it reuses Django's
RedisCacheClient internals (the pool index, the pool, the client class). If
Django changes them, this fails and the patch must be looked at again."""

import inspect

from django.core.cache.backends import redis as django_redis


def test_django_redis_client_internals_are_as_the_patch_expects():
    client = django_redis.RedisCacheClient
    assert list(inspect.signature(client._get_connection_pool_index).parameters) == [
        "self",
        "write",
    ]
    assert list(inspect.signature(client._get_connection_pool).parameters) == ["self", "write"]
    assert "self._client(connection_pool=" in inspect.getsource(client.get_client)
    assert "self._class(" in inspect.getsource(django_redis.RedisCache._cache.func)


def test_one_client_per_pool(settings):
    from iam.cache import RedisCache

    cache = RedisCache("redis://127.0.0.1:6379/0", {})
    client = cache._cache
    assert client.get_client(write=True) is client.get_client(write=True)
