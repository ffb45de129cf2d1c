"""`loa demo --send-sample` from a clean instance folder: the whole main job, headless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from broadcast.redis_server import free_port

LOA = str(Path(sys.executable).with_name("loa"))


def _free_ports(env: dict[str, str], codes: list[str]) -> None:
    # The demo's simulators listen on the configured gateway ports; give this run free ones.
    for code in codes:
        env[f"LOA_CARRIERS__{code.upper()}__GATEWAY__PORT"] = str(free_port())


@pytest.mark.slow
def test_send_sample_from_a_clean_instance(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env["LOA_INSTANCE_PATH"] = str(tmp_path / "instance")
    _free_ports(
        env, ["viettel", "vinaphone", "mobifone", "vietnamobile", "gmobile", "itelecom", "reddi"]
    )
    proc = subprocess.run(
        [LOA, "demo", "--send-sample", "--subscribers", "4000", "--timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The lists name Hà Tĩnh's 69 communes, some by their pre-2025 labels, mapped back.
    viettel = next(line for line in proc.stdout.splitlines() if line.strip().startswith("viettel"))
    mapped = int(viettel.split(" rejected, ")[1].split()[0])
    assert mapped > 100, viettel
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    carriers = result["carriers"]
    # Every carrier with subscribers in the sample commune got the alert, and every
    # recipient ended in a final state.
    assert {"viettel", "vinaphone", "mobifone"} <= set(carriers)
    final = {"delivered", "undeliverable", "expired", "rejected"}
    for code, states in carriers.items():
        assert set(states) <= final, (code, states)
        assert states.get("delivered", 0) > 0, (code, states)
    # The simulated subscribers answer a share of the messages; the replies are counted by
    # the sample's keywords (how many is chance: 5 % of a commune's numbers).
    answers = result["replies"]
    assert set(answers["by_keyword"]) == {"1", "2", "other"}
    assert answers["total"] == sum(answers["by_keyword"].values())
    assert answers["total"] == sum(a["total"] for a in answers["by_area"])
    # The demo stopped its embedded Redis server on the way out.
    assert not (tmp_path / "instance" / "redis" / "port").exists()
    # Running it again reuses the data (no second import).
    again = subprocess.run(
        [LOA, "demo", "--send-sample", "--subscribers", "4000", "--timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing them" in again.stdout
