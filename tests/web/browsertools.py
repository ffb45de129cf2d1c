"""What the browser tests share across a test process: one headless Chromium, and the worker
processes' fork parent.

- `launch_chromium`: Debian's chromium driven by Playwright. Launching it (and Playwright's
  driver) costs about two seconds of CPU; the tests share one and open fresh contexts (cookies,
  storage and cache of their own), which they close after each test.
- `WorkerForks`: `loa worker` processes forked from one interpreter that has already imported
  what a worker imports at start (SQLAlchemy, pandas, RQ, the workers' modules: about three
  seconds of CPU per process). The child runs the `loa` command itself, with the test's
  environment and arguments, as `python -c "from broadcast.cli import main; main()" worker …`
  would; only the imports are done before the fork. The fork parent has no thread, connection
  or open database when it forks, so a child starts as clean as a new interpreter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

CHROMIUM = Path(os.environ.get("LOA_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def launch_chromium() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


# The fork parent: imports once, then forks one child per request line (JSON) on its stdin and
# answers with the child's pid; {"poll": pid} answers the child's exit code once it ended
# (null while it runs). It ends when its stdin closes.
_PARENT = r"""
import json, os, sys

from broadcast.cli import main
import subscriber_import.service, workers.jobs, workers.processes, workers.sender  # noqa: F401

out = sys.stdout
out.write("ready\n")
out.flush()
for line in sys.stdin:
    ask = json.loads(line)
    if "poll" in ask:
        pid, status = os.waitpid(ask["poll"], os.WNOHANG)
        out.write(json.dumps(os.waitstatus_to_exitcode(status) if pid else None) + "\n")
        out.flush()
        continue
    pid = os.fork()
    if pid == 0:
        log = os.open(ask["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update(ask["env"])
        sys.argv = ["loa", *ask["argv"]]
        main()  # click ends with SystemExit: the child exits as the command would
        sys.exit(0)
    out.write(f"{pid}\n")
    out.flush()
"""


class WorkerForks:
    """Starts `loa ARGS…` processes forked from an interpreter with the workers' modules loaded."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("wb") as err:
            self.parent = subprocess.Popen(
                [sys.executable, "-c", _PARENT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.ended: dict[int, int] = {}
        assert self._read() == "ready", self.log.read_text(errors="replace")[-2000:]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.parent.stdin is not None and self.parent.stdout is not None
        return self.parent.stdin, self.parent.stdout

    def _read(self) -> str:
        line = self._pipes()[1].readline().strip()
        if not line:
            raise RuntimeError(
                f"the workers' fork parent ended: {self.log.read_text(errors='replace')[-2000:]}"
            )
        return line

    def _ask(self, request: dict[str, Any]) -> str:
        self._pipes()[0].write(json.dumps(request) + "\n")
        self._pipes()[0].flush()
        return self._read()

    def start(self, args: list[str], env: dict[str, str], log: Path) -> int:
        """`loa ARGS…` with exactly `env` as its environment, stdout and stderr to `log`."""
        return int(self._ask({"argv": args, "env": env, "log": str(log)}))

    def exit_code(self, pid: int) -> int | None:
        """The child's exit code (negative: the signal that ended it), None while it runs."""
        if pid not in self.ended:
            code = json.loads(self._ask({"poll": pid}))
            if code is None:
                return None
            self.ended[pid] = code
        return self.ended[pid]

    def wait(self, pid: int, seconds: float) -> int | None:
        """The exit code, waiting at most `seconds` for it."""
        deadline = time.monotonic() + seconds
        while (code := self.exit_code(pid)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return code

    def signal(self, pid: int, signum: int) -> None:
        if self.exit_code(pid) is None:  # not yet reaped: the pid is still this child's
            os.kill(pid, signum)

    def close(self) -> None:
        self._pipes()[0].close()  # the parent's loop ends
        try:
            self.parent.wait(10)
        except subprocess.TimeoutExpired:
            self.parent.send_signal(signal.SIGKILL)
            self.parent.wait(5)
        self._pipes()[1].close()
