"""Run one import in a child process with a memory ceiling and a time limit, so that a file can
only fail its own import: whatever a file makes the readers do (a native library aborting on a
huge allocation, a parse that never ends), the calling worker or `loa import` survives and
answers with a reason.

The child comes from multiprocessing's fork server, not from a fork of the caller: a fork
copies the caller's SQLite and libpq state mid-use (another thread's open statement, a held
lock, a mutex), and a child forked while a console request read the same SQLite file waited on
a lock that nobody in it could release ("database is locked" after the 30 s busy timeout, or a
hang). The fork server is a clean interpreter started once per process with the import's
modules loaded (`warm_up`, about two seconds); each import is then a fork of it (a few tens of
milliseconds). The work and its arguments are pickled to it, so `work` must be picklable (a
module-level function or a functools.partial of one). The child builds its own database
engine, sets RLIMIT_AS to its current address space plus `max_memory_mb`, RLIMIT_CPU to the
time limit, and asks the kernel to kill it if its parent dies (the fork server, which ends
with the process that started it). Progress and the result come back over a pipe; the parent
enforces the wall clock and kills the child past it. Killing the child rolls its transaction
back: the database keeps nothing of it.

Mutation testing only: `LOA_IMPORT_IN_PROCESS=mutation-testing` in the environment runs `work`
in the calling process, without limits, so that mutmut (which learns which tests reach a
function from calls recorded in the test process) can see the import's duplicate and conflict
logic. `benchmarks/mutation.py` sets it for the import-service target and nothing else does;
any other value is ignored, and the limits then always apply.
"""

from __future__ import annotations

import ctypes
import functools
import math
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from subscriber_import.errors import ImportFailed, ImportRejected

T = TypeVar("T")
Progress = Callable[[int, int | None], None]
_PR_SET_PDEATHSIG = 1
IN_PROCESS = ("LOA_IMPORT_IN_PROCESS", "mutation-testing")  # benchmarks/mutation.py only


def run_limited(
    work: Callable[[Progress], T],
    *,
    name: str,
    max_memory_mb: int,
    max_seconds: float,
    progress: Progress | None = None,
) -> T:
    """`work(progress)` in a child process; its result, or the ImportRejected it raised, or
    ImportFailed (out_of_memory, time_limit, import_stopped) when it could not finish."""
    if os.environ.get(IN_PROCESS[0]) == IN_PROCESS[1]:
        return work(progress or _ignore)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    # The child's stderr (a native reader's abort message and backtrace) is kept apart: the
    # CLI answers in one line, and the message goes into the failure's details.
    with tempfile.NamedTemporaryFile(prefix="loa-import-", suffix=".stderr") as stderr:
        child = context.Process(
            target=_child,
            args=(work, sender, stderr.name, max_memory_mb, max_seconds),
            name=f"loa-import {name}",
        )
        child.start()
        sender.close()
        try:
            return _wait(child, receiver, name, max_memory_mb, max_seconds, progress)
        except ImportFailed as exc:
            stderr.seek(0)
            said = stderr.read(4096).decode("utf-8", "replace").strip().splitlines()
            if said:
                exc.details["stderr"] = said[0][:300]
            raise


PRELOAD = ["subscriber_import.service"]  # what every import child needs, loaded once


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def warm_up() -> None:
    """Start the fork server and wait until it forks (an import worker, before it listens), so
    that the first upload does not wait for the server's imports."""
    if os.environ.get(IN_PROCESS[0]) == IN_PROCESS[1]:
        return
    probe = _context().Process(target=_ready, name="loa-import warm-up")
    probe.start()
    probe.join()


def _ready() -> None:
    """The warm-up child: the fork server answered."""


def _ignore(rows: int, total: int | None) -> None:
    """Progress nobody asked for."""


def _wait(
    child: Any,
    receiver: Connection,
    name: str,
    max_memory_mb: int,
    max_seconds: float,
    progress: Progress | None,
) -> Any:
    deadline = time.monotonic() + max_seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _time_limit(name, max_seconds)
            if not receiver.poll(min(left, 1.0)):
                continue
            try:
                kind, value = receiver.recv()
            except EOFError:  # the child died without an answer
                break
            if kind == "progress":
                if progress is not None:
                    progress(*value)
            elif kind == "done":
                return value
            elif kind == "refused":
                raise value
            elif kind == "memory":
                raise _out_of_memory(name, max_memory_mb)
            else:
                raise RuntimeError(f"internal error in the import of {name}: {value}")
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(10)
    code = child.exitcode
    if code in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS):
        # Native code (the Rust workbook reader) aborts when an allocation is refused.
        raise _out_of_memory(name, max_memory_mb)
    if code == -signal.SIGXCPU:
        raise _time_limit(name, max_seconds)
    stopped = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
    raise ImportFailed(
        "import_stopped",
        f"the import of {name} stopped unexpectedly ({stopped}); nothing was imported. "
        "Upload the file again; if it stops again, save it as CSV",
        {"file": name, "exit": stopped},
    )


def _child(
    work: Callable[[Progress], Any],
    sender: Connection,
    stderr: str,
    max_memory_mb: int,
    max_seconds: float,
) -> None:
    with open(stderr, "wb") as fh:
        os.dup2(fh.fileno(), 2)
    # The parent's handlers (an RQ worker's warm shutdown) are not the child's: Ctrl-C in a
    # terminal reaches the whole process group, and the parent decides; SIGTERM ends the child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    mapped = _address_space()
    ceiling = mapped + max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    cpu = math.ceil(max_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        result = work(functools.partial(_progress, sender))
        sender.send(("done", result))
    except ImportRejected as exc:
        sender.send(("refused", exc))
    except MemoryError:  # also pyarrow's ArrowMemoryError
        sender.send(("memory", None))
    except BaseException as exc:  # reported by the parent; the child is about to exit anyway
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def _progress(sender: Connection, rows: int, total: int | None) -> None:
    try:
        sender.send(("progress", (rows, total)))
    except OSError:  # the caller died (its pipe is closed): end now, as it did, committing nothing
        os._exit(1)


def _die_with_parent() -> None:
    """A worker killed with -9 must not leave its import running on, unseen (Linux): the fork
    server ends when its starter does, and this child with it."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _address_space() -> int:
    """Bytes mapped now: the parent's libraries come with the fork and must not count."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _out_of_memory(name: str, max_memory_mb: int) -> ImportFailed:
    return ImportFailed(
        "out_of_memory",
        f"reading {name} needed more than {max_memory_mb:,} MB of memory "
        "(imports.max_memory_mb); nothing was imported. A sheet with cells far outside the "
        "data costs memory for every empty cell between: delete them, or save the sheet as CSV",
        {"file": name, "limit_mb": max_memory_mb},
    )


def _time_limit(name: str, max_seconds: float) -> ImportFailed:
    return ImportFailed(
        "time_limit",
        f"the import of {name} took longer than {max_seconds:g} s (imports.max_seconds) and was "
        "stopped; nothing was imported. Split the file, or save it as CSV",
        {"file": name, "limit_seconds": max_seconds},
    )
