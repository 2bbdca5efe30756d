"""PostgreSQL specifics: what a wrong URL, a refused connection or bad credentials say."""

from __future__ import annotations

import socket

import pytest

from mobilebench.errors import MobilebenchError, UsageError
from mobilebench.store import SCHEMA_VERSION, ResultsStore

from .test_store import finished_run


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_one_line(cli):
    url = f"postgresql://someone:secret@127.0.0.1:{unused_port()}/results"
    with pytest.raises(MobilebenchError) as caught:
        ResultsStore(url, timeout_s=5)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to the results database {url.replace(':secret', ':***')}: ")
    assert "Connection refused" in message and "secret" not in message and "\n" not in message
    result = cli("runs", "--db", url)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Connection refused" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda url: url.replace(":mobilebench-test-password@", "@"), "no password supplied"),
        (lambda url: url.replace(":mobilebench-test-password@", ":wrong@"), "password authentication failed"),
        (lambda url: url.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
    ],
    ids=["missing password", "wrong password", "missing database"],
)
def test_bad_credentials_are_one_line(postgres_url, change, reason, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(MobilebenchError, match=reason) as caught:
        ResultsStore(change(postgres_url))
    assert "\n" not in str(caught.value) and "mobilebench-test-password" not in str(caught.value)


def test_password_from_the_environment(postgres_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "mobilebench-test-password")
    with ResultsStore(postgres_url.replace(":mobilebench-test-password@", "@")) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_an_empty_database_is_not_set_up_by_readers(postgres_url, cli):
    with pytest.raises(UsageError, match="no mobilebench results in"):
        ResultsStore(postgres_url, create=False)
    result = cli("runs", "--db", postgres_url)
    assert result.exit_code == 2 and "no mobilebench results" in result.stderr
    with ResultsStore(postgres_url) as store:
        run_id = finished_run(store)
    result = cli("runs", "--db", postgres_url, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert f'"id": {run_id}' in result.stdout


def test_someone_elses_table_is_left_alone(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE runs (x integer)")
    with pytest.raises(MobilebenchError, match='relation "runs" already exists'):
        ResultsStore(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert tables == {"runs"}
