"""Two requests at once on real database connections (PostgreSQL races)."""

import threading

from django.db import connections


def race(first, second) -> list[int]:
    """Run both at once (a barrier releases them together); their statuses."""
    barrier = threading.Barrier(2)
    statuses = [0, 0]

    def run(index, request):
        try:
            barrier.wait()
            statuses[index] = request().status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses
