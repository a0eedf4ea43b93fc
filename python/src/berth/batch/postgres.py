"""A model's versions, aliases and artifacts read from a PostgreSQL registry store, read-only.

The store is the one replicas share (`berth --registry postgresql://...`,
src/registry/postgres_registry_store.cc): `versions` and `aliases` hold the
records, `artifacts` the bytes by digest. Everything is read in one
read-only, repeatable-read transaction, so a version moved or registered by
a replica meanwhile is seen whole or not at all, and nothing is ever
written. The password comes from the URL, or from PGPASSWORD or ~/.pgpass
as libpq finds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from berth.errors import BerthError

# The number of migrations src/registry/postgres_schema.cc defines, that is
# the newest schema this package reads. A store a newer berth migrated
# further is refused rather than misread (tests/integration check that the
# two agree).
SCHEMA_VERSION = 7

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(registry: str) -> bool:
    return registry.startswith(_SCHEMES)


def _scrub(message: str, password: str | None) -> str:
    """`message` on one line, without the password, should libpq ever quote it."""
    line = " ".join(message.split())
    return line.replace(password, "***") if password else line


def _url_password(url: str) -> str | None:
    """The password in the URL's user info, as written, so that a message quoting the URL can be scrubbed."""
    rest = url.partition("://")[2]
    for stop in "/?":
        rest = rest.partition(stop)[0]
    userinfo, at, _ = rest.rpartition("@")
    return (userinfo.partition(":")[2] or None) if at else None


def _describe(params: dict[str, Any]) -> str:
    """user@host:port/db, as the server names the store in its messages (no password)."""
    user = params.get("user")
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    db = params.get("dbname") or user or ""
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


def _connect(url: str) -> tuple[Any, str, str | None]:
    """An open connection to the store at `url`, its description and the URL's password (to scrub)."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as e:
        raise BerthError(
            "reading a PostgreSQL store needs psycopg: pip install 'berth[postgres]' (or psycopg[binary])"
        ) from e
    if not is_postgres_url(url):
        raise BerthError("a PostgreSQL registry URL starts with postgresql:// or postgres://")
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as e:
        raise BerthError(f"--registry is not a usable PostgreSQL URL: {_scrub(str(e), _url_password(url))}") from None
    password = str(params.get("password") or "") or _url_password(url)
    where = _describe(params)
    # Defaults the URL may override, as the server's: give up connecting after 5 s.
    options: dict[str, Any] = {"connect_timeout": 5, "application_name": "berth-py"}
    options.update(params)
    try:
        conn = psycopg.connect(**options)
    except psycopg.Error as e:
        raise BerthError(f"cannot connect to the registry store {where}: {_scrub(str(e), password)}") from None
    return conn, where, password


def _check_schema(cur: Any, where: str) -> None:
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        raise BerthError(f"{where} is not a Berth registry store (it has no schema_migrations table)")
    cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    row = cur.fetchone()
    applied = int(row[0]) if row else 0
    if applied > SCHEMA_VERSION:
        raise BerthError(
            f"the registry store {where} has schema version {applied}, newer than this berth-py "
            f"understands ({SCHEMA_VERSION}): upgrade berth"
        )
    if applied < SCHEMA_VERSION:
        raise BerthError(
            f"the registry store {where} has schema version {applied}, older than this berth-py reads "
            f"({SCHEMA_VERSION}): start a berth server of this version on it once to migrate it"
        )


Chooser = Callable[[dict[int, dict[str, Any]], dict[str, int], str], int]


def read_version(url: str, name: str, choose: Chooser) -> tuple[int, dict[str, Any], bytes, str]:
    """The version of `name` that `choose(versions, aliases, where)` picks: its number, record, bytes and
    the store's description.

    `versions` are the active ones ({number: {digest, metadata}}), `aliases`
    {alias: number}. The artifact's bytes are not checked here (the caller
    checks them against the recorded digest).
    """
    conn, where, password = _connect(url)
    import psycopg

    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(), conn.cursor() as cur:
            _check_schema(cur, where)
            cur.execute(
                "SELECT version, digest, metadata FROM versions WHERE model = %s AND status = 'active'", (name,)
            )
            versions: dict[int, dict[str, Any]] = {}
            for number, digest, metadata in cur.fetchall():
                try:
                    parsed = json.loads(metadata) if metadata else {}
                except ValueError:
                    parsed = {}
                versions[int(number)] = {"digest": str(digest), "metadata": parsed if isinstance(parsed, dict) else {}}
            cur.execute("SELECT alias, version FROM aliases WHERE model = %s", (name,))
            aliases = {str(a): int(v) for a, v in cur.fetchall()}
            number = choose(versions, aliases, where)
            if number not in versions:
                raise BerthError(f"model '{name}' has no active version {number} in {where}")
            record = versions[number]
            cur.execute("SELECT bytes FROM artifacts WHERE digest = %s", (record["digest"],))
            row = cur.fetchone()
            if row is None:
                raise BerthError(f"the registry store {where} holds no artifact {record['digest']} "
                                 f"(version {number} of '{name}')")  # fmt: skip
            body = bytes(row[0])
    except psycopg.Error as e:
        raise BerthError(f"cannot read the registry store {where}: {_scrub(str(e), password)}") from None
    finally:
        conn.close()
    return number, record, body, where
