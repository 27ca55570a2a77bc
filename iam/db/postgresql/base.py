"""Django's PostgreSQL backend with a health check that costs no round trip.

Kept by measurement (benchmarks/README.md, "Patches kept"): without the
`SELECT 1` a warm dashboard view costs 6 % less server CPU, paired run
against the same tree with Django's own check. tests/test_db_health.py fails
if Django stops asking `is_usable()` for its health check.

With CONN_HEALTH_CHECKS Django sends `SELECT 1` before the first query of
every request: half the PostgreSQL statements of a warm page, for every app
server (the worker's own CPU hardly sees it: it waits). A connection that
PostgreSQL ended (restart, failover, pg_terminate_backend, idle timeout) has
its FATAL notice or the end of the stream waiting in the idle socket, so the
same answer comes from asking the kernel whether the socket is readable. A connection that a
broken network silently dropped passes both checks alike and fails at its
query (that request gets the 503 page; the connection is then closed).
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        pgconn = conn.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status == pq.TransactionStatus.INERROR:
            return False  # the SELECT 1 would have failed too
        # Nothing may arrive on an idle connection that we want: data waiting
        # (or end of stream) means the server has spoken last, i.e. hung up.
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return not poller.poll(0)
