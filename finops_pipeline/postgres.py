"""A local PostgreSQL server for Dagster's run, event and schedule storage, on 127.0.0.1 only."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

from finops_pipeline.demo.prometheus import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} not found: apt-get install -y postgresql "
            "(server binaries land under /usr/lib/postgresql/<version>/bin)"
        )
    return found


class LocalPostgres:
    """initdb once into `datadir`, then start and stop a server that listens on loopback only.

    PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user.
    """

    def __init__(self, datadir: Path, port: int | None = None, remove_on_stop: bool = False):
        self.datadir = datadir.resolve()
        self.port = port or free_port()
        self.user = "postgres"
        self.remove_on_stop = remove_on_stop  # for throwaway instances, e.g. a test session

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/dagster"

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        return ["runuser", "-u", "postgres", "--", *args]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in [path, *path.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _reachable_datadir(self) -> None:
        """As root, the server user must reach the folder; a private home (mode 700) hides it.
        Then the cluster lives in a folder of the postgres user's own, keyed by the asked path."""
        if os.geteuid() != 0:
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._chown(self.datadir)
        ok = (
            subprocess.run(
                ["runuser", "-u", "postgres", "--", "test", "-w", str(self.datadir)],
                capture_output=True,
            ).returncode
            == 0
        )
        if not ok:
            key = hashlib.sha1(str(self.datadir).encode()).hexdigest()[:12]
            self.datadir = Path(tempfile.gettempdir()) / f"finops-pipeline-postgres-{key}"
            self.datadir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self.datadir)

    def start(self) -> LocalPostgres:
        if os.geteuid() != 0:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._reachable_datadir()
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._chown(self.datadir)
            subprocess.run(
                self._as_owner(
                    [
                        _bin("initdb"),
                        "-D",
                        str(self.datadir),
                        "-U",
                        self.user,
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                check=True,
                capture_output=True,
            )
        log = self.datadir / "server.log"
        subprocess.run(
            self._as_owner(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-c listen_addresses=127.0.0.1 -p {self.port} "
                    f"-c unix_socket_directories={self.datadir} "
                    # Dagster commits every event on its own; not waiting for each WAL flush
                    # makes that cheap. A crash may lose the last moments of events, never
                    # consistency.
                    "-c synchronous_commit=off",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                con = psycopg2.connect(
                    host="127.0.0.1", port=self.port, user=self.user, dbname="postgres"
                )
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = 'dagster'")
            if cur.fetchone() is None:
                cur.execute("create database dagster")
        con.close()
        return self

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner(
                    [_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]
                ),
                check=False,
                capture_output=True,
            )
        if self.remove_on_stop:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
