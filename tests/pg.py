"""A real PostgreSQL server for the tests, and databases on either engine.

Loaded for the whole suite by ``tests/conftest.py`` (``pytest_plugins``). The server is
the Debian package's (``make setup`` installs ``postgresql``; binaries under
``/usr/lib/postgresql/<version>/bin``, or set ``MOBILEBENCH_PG_BIN``), started once per
test session in a temporary folder on a free loopback port and stopped at the end. It
refuses to run as root, and CI runs as root: then it runs as the system user
``mobilebench-test`` (created if missing). Password authentication is on, so a URL
without the password is refused like on a real server.

Fixtures:

- ``postgres``: the :class:`PostgresServer` (session-scoped).
- ``postgres_url``: a new, empty database on it for this test (its URL, with password;
  in fact a schema of its own, see :meth:`PostgresServer.new_database`).
- ``results_db``: parametrized over ``sqlite`` and ``postgresql``: a results database
  (a file path or a URL, as ``--db`` takes it) that does not exist yet. A test that
  takes it runs once on each engine.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_USER = "mobilebench"
TEST_DATABASE = "tests"
PG_PASSWORD = "mobilebench-test-password"
SYSTEM_USER = "mobilebench-test"
_databases = itertools.count()


def _bin_dir() -> Path:
    if env := os.environ.get("MOBILEBENCH_PG_BIN"):
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    pytest.fail("no PostgreSQL server found: run `make setup` (installs Debian's postgresql)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> list[str]:
    """The command prefix that runs a server binary as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", SYSTEM_USER, "--"]


@dataclass
class PostgresServer:
    """A running server: ``url(database)`` connects as its superuser, with password."""

    port: int
    data_dir: Path

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        auth = f"{PG_USER}:{PG_PASSWORD}" if password else PG_USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database of its own.

        It is a schema of the server's ``tests`` database, which the URL makes the
        connection's ``search_path``: as empty as a new database for mobilebench, and a
        thousand times cheaper to make than one (a database is a copy of template1).
        """
        name = f"test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(TEST_DATABASE), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url(TEST_DATABASE)}?options=-csearch_path%3D{name}"


def _start(root: Path) -> tuple[PostgresServer, list[str], Path]:
    bin_dir, prefix = _bin_dir(), _as_server_user()
    data = root / "data"
    pwfile = root / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if prefix:
        shutil.chown(root, user=SYSTEM_USER)
        shutil.chown(pwfile, user=SYSTEM_USER)
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
    )
    log = root / "server.log"
    for _ in range(5):  # another process may take the free port first
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        started = subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
        )
        if started.returncode == 0:
            server = PostgresServer(port=port, data_dir=data)
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {TEST_DATABASE}")
            return server, prefix, bin_dir
    log_text = log.read_text() if log.exists() else ""
    pytest.fail(f"PostgreSQL did not start: {started.stderr.strip()} {log_text[-2000:]}", pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (see the module docstring)."""
    root = Path(tempfile.mkdtemp(prefix="mobilebench-pg-"))
    try:
        server, prefix, bin_dir = _start(root)
        try:
            yield server
        finally:
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A new, empty PostgreSQL database for this test (URL with password)."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def results_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A results database that does not exist yet, on each engine in turn."""
    if request.param == "sqlite":
        return str(tmp_path / "results.sqlite")
    return request.getfixturevalue("postgres").new_database()
