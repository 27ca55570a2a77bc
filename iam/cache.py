"""Django's Redis cache with one redis-py client per connection pool.

Django builds a new `redis.Redis` object for every cache call; redis-py fills a
table of some 200 response callbacks in each constructor (cProfile of a
dashboard view: 6,000 constructors for 2,000 views, the largest single item).
A client is thread-safe over its pool, so one per pool is enough.

Kept by measurement (benchmarks/README.md, "Patches kept"): Django's own
client costs 8 % more of a warm dashboard view and 5 % more of a full login,
paired runs. tests/test_cache_client.py fails if the Django internals it
builds on change.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
