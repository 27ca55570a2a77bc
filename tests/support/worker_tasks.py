"""A task for the worker's tests: it meets a lost database on its first run
(as a mail task does when PostgreSQL stops mid-send), then succeeds."""

from django.db import OperationalError
from django_tasks import task

RUNS: list[int] = []


@task(queue_name="mail")
def cut_off_once() -> str:
    RUNS.append(1)
    if len(RUNS) == 1:
        raise OperationalError("server closed the connection unexpectedly")
    return "sent"
