"""Prepared statements after a migration (settings: DATABASE_PREPARED_STATEMENTS).

Postgres re-plans a prepared statement whose tables changed, but one whose result columns
changed type (a migration widening a `max_length`, say) fails on every execution with
"cached plan must not change result type", on each persistent connection that prepared it
before the migration, until the connection is recycled. `stale_plan_retry`, an execute
wrapper on every connection, deallocates the connection's prepared statements when that
happens (psycopg forgets its own with them) and, outside a transaction, runs the statement
again, so the caller never sees the error. Inside a transaction the statement fails once
(the transaction is aborted) and its ROLLBACK makes psycopg deallocate them all anyway.
"""

from __future__ import annotations

STALE_PLAN = "cached plan must not change result type"
FEATURE_NOT_SUPPORTED = "0A000"


def _stale_plan(error: Exception) -> bool:
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == FEATURE_NOT_SUPPORTED and STALE_PLAN in str(cause)


def stale_plan_retry(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    except Exception as error:
        if not _stale_plan(error):
            raise
        connection = context["connection"]
        if connection.in_atomic_block or not connection.get_autocommit():
            raise
        connection.connection.execute("DEALLOCATE ALL")
        return execute(sql, params, many, context)


def stale_plan_retry_install(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: the wrapper, once per connection object."""
    if (
        connection.vendor != "postgresql"
        or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None
    ):
        return
    if stale_plan_retry not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, stale_plan_retry)
