"""URLs for the one database connection Django uses, for the processes that need their own.

Without Redis, Celery's broker is kombu's SQLAlchemy transport on Django's own database, and
subprocesses (test workers, benchmarks) are handed a DATABASE_URL. Both must reach exactly
the server Django reaches: with the embedded Postgres that is a Unix socket in `.data/pg`
given as OPTIONS["host"] with an empty HOST; a URL built from HOST alone pointed at libpq's
default socket, i.e. whatever system Postgres the machine runs (issue 12). Everything that
turns a `DATABASES` entry into a URL goes through `database_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

# OPTIONS that Django's backend or psycopg consume themselves; everything else is a libpq
# keyword (libpq refuses unknown ones, e.g. a broker URL with `prepare_threshold`).
_DJANGO_ONLY_OPTIONS = {
    "isolation_level",
    "server_side_binding",
    "pool",
    "assume_role",
    "cursor_factory",
    "prepare_threshold",
    "prepared_max",
}


def database_url(database: Mapping, *, scheme: str = "postgresql") -> str:
    """A URL for a Django `DATABASES` entry: same host or socket directory, port, user,
    password, database and libpq options (`scheme` picks the driver, e.g.
    `postgresql+psycopg` for SQLAlchemy, `postgres` for django-environ)."""
    options = {key: value for key, value in (database.get("OPTIONS") or {}).items() if value is not None}
    for key in _DJANGO_ONLY_OPTIONS:
        options.pop(key, None)
    # Django gives HOST/PORT precedence over the same keys in OPTIONS (DatabaseWrapper.
    # get_connection_params); keep that order.
    host = str(database.get("HOST") or options.pop("host", "") or "")
    port = str(database.get("PORT") or options.pop("port", "") or "")
    options.pop("host", None)
    options.pop("port", None)
    user = quote(str(database.get("USER") or ""), safe="")
    password = quote(str(database.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    name = quote(str(database.get("NAME") or ""), safe="")
    query: dict[str, str] = {}
    if host and not host.startswith("/"):
        netloc = f"{auth}{host}:{port or 5432}"
    else:
        # A socket directory cannot sit in the netloc; libpq (and SQLAlchemy) read it, and
        # the port that names the socket file, from the query. No host at all stays no host
        # (libpq's default socket), exactly as Django itself would connect.
        if host:
            query["host"] = host
        if port:
            query["port"] = port
        netloc = auth
    query.update({key: str(value) for key, value in sorted(options.items())})
    return f"{scheme}://{netloc}/{name}" + (f"?{urlencode(query)}" if query else "")


def broker_url(database: Mapping) -> str:
    """Celery's broker on the database itself (kombu's SQLAlchemy transport, psycopg 3)."""
    return "sqla+" + database_url(database, scheme="postgresql+psycopg")
