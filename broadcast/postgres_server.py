"""A throw-away PostgreSQL cluster owned by this process (tests, the soak), so that it can be
stopped and started mid-broadcast without touching the shared server: `initdb` into a folder,
`pg_ctl` on its own port on 127.0.0.1, trust authentication, nothing kept.

The cluster lives in a folder of its own under the system's temporary folder (the `postgres`
user cannot reach into a root-only pytest or mkdtemp folder), removed by `close()`.
The binaries come from PostgreSQL's own folder (/usr/lib/postgresql/<version>/bin, the newest)
or PATH. PostgreSQL refuses to run as root: under root the cluster runs as the `postgres`
system user (runuser), which then owns the folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from broadcast.redis_server import free_port


def postgres_bin(name: str) -> str | None:
    """The path of a PostgreSQL server program (initdb, pg_ctl), or None if not installed."""
    folders = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for folder in folders:
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return shutil.which(name)


class PrivatePostgres:
    """initdb + pg_ctl on 127.0.0.1:`port`; `url` is its `postgres` database."""

    def __init__(self, port: int | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="loa-pg-"))
        self.data = self.directory / "data"
        self.port = port or free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def available() -> bool:
        return postgres_bin("initdb") is not None and postgres_bin("pg_ctl") is not None

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        binary = postgres_bin(program)
        if binary is None:
            raise RuntimeError(f"{program} not found (install the PostgreSQL server)")
        done = subprocess.run(
            [*self._as, binary, *args], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode:
            raise RuntimeError(f"{program} failed: {(done.stderr or done.stdout).strip()}")

    def start(self) -> PrivatePostgres:
        if not (self.data / "PG_VERSION").exists():
            if self._as:
                shutil.chown(self.directory, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8", "--locale", "C")  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
            f"{self.directory} -c fsync=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "30",
                  "-l", str(self.directory / "server.log"), "start")  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: sessions are cut, as on a restart by an operator)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, down: float = 0.0) -> None:
        """Stop, stay down `down` seconds, start again on the same port: data kept."""
        self.stop()
        time.sleep(down)
        self.start()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def close(self) -> None:
        """Stop at once and remove the cluster."""
        self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()
