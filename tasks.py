#!/usr/bin/env python3
"""Loa's two commands for a fresh machine with only Python (stdlib only, no venv needed).

    python3 tasks.py demo    # venv + install + `loa demo`: console, simulators, workers, demo data
    python3 tasks.py test    # venv + install + ruff + import contracts + mypy + the test suite

Anything after the command is passed on (`python3 tasks.py test -k import -x`,
`python3 tasks.py demo --send-sample`). The virtual environment is `.venv` beside this file;
it is (re)installed only when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    printable = " ".join(str(a) for a in args)
    print(f"+ {printable}", flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv(extras: str) -> None:
    """Create .venv and install Loa (editable) with the given extras when anything changed."""
    if not (BIN / "python").exists():
        print(f"Creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / ".loa-installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(digest)


def demo(args: list[str]) -> None:
    ensure_venv("")
    os.execv(str(BIN / "loa"), [str(BIN / "loa"), "demo", *args])


def test(args: list[str]) -> None:
    ensure_venv("test")
    # The suite starts a few hundred `loa` processes; where PYTHONDONTWRITEBYTECODE is set
    # (as on these machines) each compiled Loa's modules from source again (about 0.3 s of CPU
    # a process) and every pytest process rewrote its assertions anew. The checkout keeps its
    # bytecode (__pycache__, ignored by git) for the run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "lint-imports")
    if args:  # a chosen part, as asked
        run(BIN / "mypy")  # the packages and options are in pyproject.toml [tool.mypy]
        run(BIN / "python", "-m", "pytest", *args)
        return
    # mypy (about a minute from a cold cache) checks while the first part of the suite runs;
    # its verdict is printed, and fails the command, when that part has finished.
    print(f"+ {BIN / 'mypy'} (beside the first part of the suite)", flush=True)
    checker = subprocess.Popen(
        [str(BIN / "mypy")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    # The whole suite: what is not judged by timing on three workers, then the `serial` tests
    # (rates, windows, deadlines: tests/conftest.py's SERIAL) alone on the machine. Three on
    # two cores: with two, a fifth of the cores' time went idle while both waited (on
    # PostgreSQL, a subprocess, a browser); a third fills it (docs/testing.md).
    # `loadgroup`: tests marked with one xdist_group run on one worker (the API fuzz's two
    # databases share its drawn examples); the others are spread as by default.
    part = subprocess.run(
        [str(BIN / "python"), "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-m", "not serial"],
        cwd=ROOT,
        check=False,
    )
    checked = checker.communicate()[0].decode(errors="replace")
    print(f"+ mypy: {checked}", end="" if checked.endswith("\n") else "\n", flush=True)
    if checker.returncode or part.returncode:
        sys.exit(checker.returncode or part.returncode)
    run(BIN / "python", "-m", "pytest", "-m", "serial")


def main() -> None:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
