"""`loa send`, `loa progress`, `loa reconcile`, `loa worker` as an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner
from prometheus_client import generate_latest

from broadcast.cli import cli
from delivery.conftest import World
from delivery.helpers import accepted_numbers, alert_status, states


def test_send_progress_and_reconcile(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    numbers = world.numbers(120)
    alert_id = world.make_alert({"viettel": numbers})
    runner = CliRunner()
    env = world.env()

    sent = runner.invoke(cli, ["send", str(alert_id), "--timeout", "10"], env=env)
    assert sent.exit_code == 0, sent.output
    assert states(world.database, alert_id) == {"delivered": 120}
    assert set(accepted_numbers(world.sims["viettel"])) == set(numbers)
    assert alert_status(world.database, alert_id) == "completed"

    shown = runner.invoke(cli, ["progress", str(alert_id)], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["viettel"]["delivered"] == 120

    world.runtime.redis.flushdb()
    again = runner.invoke(cli, ["reconcile", "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["alerts"] == 0  # completed: nothing left to do

    exposed = generate_latest().decode()
    assert 'loa_submitted_total{carrier="viettel"}' in exposed


def test_worker_refuses_bad_arguments_clearly(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",))
    runner = CliRunner()
    neither = runner.invoke(cli, ["worker"], env=world.env())
    assert neither.exit_code == 2
    assert "give either --carrier CODE, --control or --imports" in neither.output
    unknown = runner.invoke(cli, ["worker", "--carrier", "nowhere"], env=world.env())
    assert unknown.exit_code == 2
    assert "unknown carrier 'nowhere'" in unknown.output


def test_send_refuses_an_alert_that_is_not_approved(make_world: Callable[..., World]) -> None:
    from broadcast.models import AlertStatus

    world = make_world(("viettel",))
    alert_id = world.make_alert({"viettel": world.numbers(3)}, status=AlertStatus.DRAFT)
    result = CliRunner().invoke(cli, ["send", str(alert_id)], env=world.env())
    assert result.exit_code == 2
    assert f"alert {alert_id}: alert is draft" in result.output
    assert states(world.database, alert_id) == {}


def test_worker_with_a_refused_bind_says_why(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",))
    env = {**world.env(), "LOA_CARRIERS__VIETTEL__GATEWAY__PASSWORD": "wrong"}
    result = CliRunner().invoke(cli, ["worker", "--carrier", "viettel", "--burst"], env=env)
    assert result.exit_code == 2
    assert "as 'loa_viettel' refused: ESME_RINVPASWD (0x0E) Invalid Password" in result.output
