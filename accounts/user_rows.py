"""One account by primary key or email, with the SELECT compiled once.

Every page loads its user (Django's auth middleware) and every password login
looks the account up by email. Through the ORM each call builds the same
statement again (filter, compiler, SQL): 0.35-0.45 ms of CPU here, where the
statement itself costs 0.2-0.25 ms (benchmarks/README.md). So the ORM
compiles each of the two once per process and database, and a call only runs
it, applies the converters the ORM would, and builds the instance with
`Model.from_db`, as the ORM does.
"""

from __future__ import annotations

import functools

from django.db import connections, router

from accounts.models import User

_SAMPLE = {"pk": 0, "email": ""}


def user_by_pk(pk) -> User | None:
    return _get("pk", pk)


def user_by_email(normalized_email: str) -> User | None:
    return _get("email", normalized_email)


def _get(column: str, value) -> User | None:
    alias = router.db_for_read(User)
    connection = connections[alias]
    sql, fields, converters, field = _statement(alias, column)
    value = field.get_db_prep_value(field.get_prep_value(value), connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    if converters:
        row = list(row)
        for position, (functions, expression) in converters.items():
            for convert in functions:
                row[position] = convert(row[position], expression, connection)
    return User.from_db(alias, fields, row)


@functools.cache
def _statement(alias: str, column: str):
    """SQL with one parameter, the selected fields in order, the converters
    by position, and the model field the parameter is for."""
    query = User._default_manager.filter(**{column: _SAMPLE[column]}).query
    compiler = query.get_compiler(alias)
    sql, params = compiler.as_sql()
    if len(params) != 1:
        raise AssertionError(f"one parameter expected in {sql}")
    columns = [col for col, _sql, _alias in compiler.select]
    field = User._meta.pk if column == "pk" else User._meta.get_field(column)
    return sql, [c.target.attname for c in columns], compiler.get_converters(columns), field
