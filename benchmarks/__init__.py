"""Benchmarks of the IAM service, run as `python -m benchmarks <name>`.

Modules named for what they hold: stack (environment, database, cache,
users), servers (granian, and gunicorn for old commits), browser (clients), procs (CPU and
memory from /proc), paired (alternating A/B blocks), results (tables and
JSON); one module per benchmark, listed in __main__.
"""
