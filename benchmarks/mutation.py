"""Mutation testing of Loa's critical modules with mutmut: do the tests notice a planted bug?

Each module is mutated on its own, against only the test files that exercise it, so one run
fits a small machine. For each module a stage `mutants/<module>/` is laid out (a copy of the
module's package, `config/`, `tests/` and pyproject.toml whose `[tool.mutmut]` names that
module and its test files); mutmut then copies the stage to `mutants/<module>/mutants/`, plants
one change at a time and runs the tests that reach the changed function. `mutants/` is
git-ignored and outside ruff.

Prints progress to stderr and, as the last stdout line, one JSON object: per module the
mutants, killed, survived, timeouts, no_tests (mutants no selected test reaches), not_checked
(left when the time bound ran out) and each survivor's file:line and change.

    .venv/bin/python benchmarks/mutation.py                      # every module
    .venv/bin/python benchmarks/mutation.py encoding numbers     # some of them
    .venv/bin/python benchmarks/mutation.py limiter --minutes 10 --jobs 1
    .venv/bin/python benchmarks/mutation.py --list

Tests that start other processes (a `loa` subprocess, a sender) run the original code there,
so a mutant only seen by such a test survives: read the survivors before trusting a score.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from subscriber_import.isolation import IN_PROCESS  # noqa: E402

MUTANTS = ROOT / "mutants"


@dataclass(frozen=True)
class Target:
    """A module to mutate, the test files that exercise it, and which of its functions."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # empty: every function of the module
    # more pytest arguments narrowing the tests (e.g. "-k", "sqlite and scope"): web tests
    # that start an app per test on both databases are too slow to run whole for each mutant
    selection: tuple[str, ...] = ()
    # environment for the run: the import service's in-process mode (subscriber_import.isolation)
    env: tuple[tuple[str, str], ...] = ()

    @property
    def package(self) -> str:
        return self.path.split("/")[0]

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


TARGETS = {
    "encoding": Target("smpp_gateway/encoding.py", ("tests/gateway/test_encoding.py",)),
    "numbers": Target(
        "subscriber_import/numbers.py",
        ("tests/imports/test_numbers.py", "tests/imports/test_number_plan.py"),
    ),
    "limiter": Target("workers/limiter.py", ("tests/delivery/test_limiter.py",)),
    "alerts": Target(
        "broadcast/alerts.py",
        (
            "tests/alerts/test_alert_states.py",
            "tests/alerts/test_alert_services.py",
            "tests/alerts/test_policy.py",
        ),
        # the state machine and the approval rules
        (
            "next_status",
            "allowed_actions",
            "_transition",
            "_require_",
            "submit_for_approval",
            "withdraw",
            "approve",
            "reject",
            "_control",
            "pause",
            "resume",
            "cancel",
            "mark_",
        ),
        # SQLite only: these functions do not depend on the database, and both databases
        # doubled each mutant's run (30 minutes left a fifth of the mutants unchecked)
        ("-k", "not postgresql"),
    ),
    # the carrier scope and the login throttle (the whole of test_auth, test_carrier_scope and
    # test_imports on both databases took the 10-minute bound for mutmut's first passes alone)
    "security": Target(
        "broadcast/web/security.py",
        ("tests/web/test_carrier_scope.py", "tests/web/test_auth.py"),
        (
            "carrier_in_scope",
            "client_ip",
            "LoginThrottle",
            "known_device",
            "remember_device",
            "_device_signer",
        ),
        (
            "-k",
            "sqlite and (another_carrier or route or throttl or rotating or forged or "
            "replayed or revoked_or or self_approval)",
        ),
    ),
    # the scope checks of the imports API: an import, and an upload's progress by token
    "imports-scope": Target(
        "broadcast/web/api/imports.py",
        ("tests/web/test_carrier_scope.py", "tests/web/test_auth.py"),
        ("visible_import", "progress_in_scope"),
        ("-k", "sqlite and (another_carrier or replayed or revoked_or)"),
    ),
    "import-service": Target(
        "subscriber_import/service.py",
        ("tests/imports/test_service.py", "tests/imports/test_old_labels.py"),
        # the duplicate and conflict logic: list rows (duplicates within and across chunks,
        # numbers other carriers hold), counts rows, and the coverage conflicts
        (
            "_import_list",
            "_repeats",
            "_contains",
            "_as_int64",
            "_import_counts",
            "_province_date",
            "coverage",
        ),
        # SQLite only, as for alerts: the COPY path is the loader's, not these functions'
        ("-k", "not postgresql"),
        # the import runs in the test process, not in a forked child mutmut cannot see
        env=(IN_PROCESS,),
    ),
}

# Written by mutmut in its .meta files; anything else counts as "suspicious".
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stage(name: str, target: Target) -> Path:
    """A fresh directory holding what mutmut copies, with a pyproject naming this target."""
    where = MUTANTS / name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for folder in {target.package, "config", "tests"}:
        shutil.copytree(ROOT / folder, where / folder, ignore=skip)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    base = project["tool"]["mutmut"]
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    start = text.index("[tool.mutmut]")
    end = text.find("\n[", start) + 1 or len(text)
    text = text[:start] + _mutmut_section(base, target) + "\n" + text[end:]
    (where / "pyproject.toml").write_text(text, encoding="utf-8")
    return where


def _mutmut_section(base: dict[str, object], target: Target) -> str:
    settings = dict(base)
    settings["source_paths"] = [target.package]
    settings["only_mutate"] = [target.path]
    settings["also_copy"] = ["config"]
    settings["pytest_add_cli_args_test_selection"] = [*target.tests, *target.selection]
    lines = ["[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _patterns(target: Target) -> list[str]:
    """mutmut's mutant-name globs for the chosen functions (`module.x_name__mutmut_N`)."""
    return [f"{target.dotted}.x*{f}*" for f in target.functions]


def run_mutmut(where: Target, cwd: Path, jobs: int, seconds: float) -> bool:
    """Run mutmut in the stage; False when the time bound stopped it."""
    patterns = _patterns(where)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *patterns]
    log(f"+ (cd {cwd.relative_to(ROOT)} && {' '.join(command[1:])})")
    env = {k: v for k, v in os.environ.items() if k not in ("LOA_TEST_REDIS_URL", IN_PROCESS[0])}
    env.update(where.env)
    with (cwd / "mutmut.log").open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # mutmut saves what it has on Ctrl-C
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return False
    if process.returncode != 0:
        tail = (cwd / "mutmut.log").read_text(errors="replace").splitlines()[-15:]
        log("\n".join(tail))
        raise SystemExit(f"mutmut failed for {where.path} (see {cwd / 'mutmut.log'})")
    return True


def _function(tree: ast.Module, name: str) -> ast.AST | None:
    """The function or method a mutant name points at (`x_f` or `xǁClassǁmethod`)."""
    parts = name.removeprefix("x_").removeprefix("xǁ").split("ǁ")
    nodes: list[ast.AST] = list(tree.body)
    found: ast.AST | None = None
    for part in parts:
        found = next(
            (
                n
                for n in nodes
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if found is None:
            return None
        nodes = list(found.body)
    return found


def _first_line(lines: list[str], node: ast.AST | None) -> int:
    """The source line mutmut's diff of a function starts at (its line 1).

    The diff is of the function's text as libcst holds it: the comments right above the `def`
    (and its decorators) belong to the function, so the diff starts at the first of them, not
    at the `def` (a section comment above `_import_counts` put every survivor 3 lines low)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return 1
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    indent = " " * node.col_offset
    above = first - 1  # 1-based number of the line above
    while above >= 1:
        line = lines[above - 1]
        if line.strip() and not (line.startswith(indent) and line.strip().startswith("#")):
            break
        above -= 1
    first = above + 1
    while first < node.lineno and not lines[first - 1].strip():  # the diff is stripped
        first += 1
    return first


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, keys = sys.argv[1], sys.argv[2:]
print(json.dumps({k: get_diff_for_mutant(k, path=path) for k in keys}))
"""


def survivors(cwd: Path, target: Target, keys: list[str]) -> list[dict[str, object]]:
    """file:line and the change of each surviving mutant, from mutmut's diffs."""
    if not keys:
        return []
    diffs = json.loads(
        subprocess.run(
            [sys.executable, "-c", _DIFFS, target.path, *keys],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    source = (ROOT / target.path).read_text(encoding="utf-8")
    tree, lines = ast.parse(source), source.splitlines()
    found: list[dict[str, object]] = []
    for key in keys:
        diff = diffs[key].splitlines()
        removed = [x[1:].strip() for x in diff if x.startswith("-") and not x.startswith("---")]
        added = [x[1:].strip() for x in diff if x.startswith("+") and not x.startswith("+++")]
        node = _function(tree, re.sub(r"__mutmut_\d+$", "", key.rsplit(".", 1)[-1]))
        line = _first_line(lines, node) + _changed_offset(diff)
        # a check against the source: a location that is not the changed line is marked `?`
        exact = not removed or (0 < line <= len(lines) and lines[line - 1].strip() == removed[0])
        found.append(
            {
                "location": f"{target.path}:{line}{'' if exact else '?'}",
                "mutant": key,
                "change": " / ".join(removed) + " -> " + " / ".join(added),
            }
        )
    return found


def _changed_offset(diff: list[str]) -> int:
    """Lines from the function's first line to the first changed one, read from the hunks."""
    old = 0
    for line in diff:
        hunk = re.match(r"@@ -(\d+)", line)
        if hunk:
            old = int(hunk.group(1)) - 1
        elif line.startswith("-") and not line.startswith("---"):
            return old
        elif not line.startswith(("+", "---", "+++")):
            old += 1
    return 0


def results(cwd: Path, target: Target) -> dict[str, object]:
    meta = cwd / "mutants" / (target.path + ".meta")
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    if target.functions:
        patterns = _patterns(target)
        codes = {k: v for k, v in codes.items() if any(fnmatch(k, p) for p in patterns)}
    survived = sorted(k for k, v in codes.items() if v in SURVIVED)
    counted = KILLED | SURVIVED | TIMEOUT | NO_TESTS | {None}
    return {
        "module": target.path,
        "tests": list(target.tests),
        "mutants": len(codes),
        "killed": sum(v in KILLED for v in codes.values()),
        "survived": len(survived),
        "timeouts": sum(v in TIMEOUT for v in codes.values()),
        "no_tests": sum(v in NO_TESTS for v in codes.values()),
        "not_checked": sum(v is None for v in codes.values()),
        "suspicious": sum(v not in counted for v in codes.values()),
        "survivors": survivors(cwd, target, survived),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Modules: " + ", ".join(f"{k} ({t.path})" for k, t in TARGETS.items()),
    )
    parser.add_argument("modules", nargs="*", metavar="MODULE", help="default: all of them")
    parser.add_argument("--minutes", type=float, default=30.0, help="time bound per module")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument(
        "--report", action="store_true", help="read the last run's results again, run nothing"
    )
    args = parser.parse_args()
    if args.list:
        for key, target in TARGETS.items():
            print(f"{key:15} {target.path:30} {' '.join(target.tests)}")
        return
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    if args.minutes <= 0 or args.jobs < 1:
        parser.error("--minutes must be above 0 and --jobs at least 1")
    report: dict[str, object] = {}
    for name in args.modules or list(TARGETS):
        target = TARGETS[name]
        started = time.monotonic()
        cwd = MUTANTS / name
        finished = None
        if not args.report:
            cwd = stage(name, target)
            finished = run_mutmut(target, cwd, args.jobs, args.minutes * 60)
        elif not (cwd / "mutants" / (target.path + ".meta")).is_file():
            parser.error(f"no earlier run of {name!r} under {cwd}")
        result = results(cwd, target)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["finished"] = finished
        log(
            f"{target.path}: {result['killed']}/{result['mutants']} killed, "
            f"{result['survived']} survived, {result['seconds']} s"
        )
        report[name] = result
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
