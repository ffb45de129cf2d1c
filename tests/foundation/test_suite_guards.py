"""The suite cannot look green while testing nothing: a required browser that is missing fails
the run, and so does a run in which every test skipped. Each case runs pytest as CI would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOA_REQUIRE_")}
    environ.update(env)
    # --assert=plain: with bytecode writing off (PYTHONDONTWRITEBYTECODE=1, as on this
    # project's machines) pytest cannot cache its assertion rewriting, and each child would
    # rewrite every module of its plugins again: half of the child's CPU. The guards are
    # conftest hooks, which rewriting does not touch.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--assert=plain", "-q", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_a_required_browser_that_is_missing_fails_the_run(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-chromium")
    required = _pytest(
        tmp_path,
        "tests/web/test_browser.py",
        LOA_TEST_CHROMIUM=missing,
        LOA_REQUIRE_BROWSER="1",
    )
    assert required.returncode not in (0, 5), required.stdout
    assert f"LOA_REQUIRE_BROWSER=1 but {missing} not installed" in required.stdout

    optional = _pytest(tmp_path, "tests/web/test_browser.py", LOA_TEST_CHROMIUM=missing)
    assert "skipped" in optional.stdout and "LOA_REQUIRE_BROWSER" not in optional.stdout


def test_a_run_where_nothing_passed_fails(tmp_path: Path) -> None:
    # Collected, then skipped by its fixture: PostgreSQL unreachable (nothing listens on port 1).
    skipped = _pytest(
        tmp_path,
        "tests/imports/test_service.py",
        "-k",
        "postgresql and purge_superseded",
        LOA_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:1/test",
    )
    assert skipped.returncode == 5, skipped.stdout
    assert "no test passed (1 skipped): failing the run" in skipped.stdout

    passed = _pytest(tmp_path, "tests/gateway/test_encoding.py", "-k", "test_chars_left")
    assert passed.returncode == 0, passed.stdout
