"""Fixtures for gateway tests: real simulators on ephemeral ports, real sessions over TCP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from smpp_gateway.client import SmppSession
from smpp_gateway.config import GatewayConfig
from smpp_gateway.simulator import SimulatorConfig, SmscSimulator


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., SmscSimulator]]:
    started: list[SmscSimulator] = []

    def start(**changes: object) -> SmscSimulator:
        sim = SmscSimulator(replace(SimulatorConfig(seed=1), **changes))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def open_session() -> Iterator[Callable[..., SmppSession]]:
    sessions: list[SmppSession] = []

    def open_(
        sim: SmscSimulator,
        *,
        on_receipt=None,
        on_message=None,
        connect: bool = True,
        **changes: object,
    ):
        config = GatewayConfig(
            host="127.0.0.1",
            port=sim.port,
            system_id="loa",
            password="secret",
            source_addr="LOA",
            response_timeout=2.0,
            reconnect_initial=0.05,
            reconnect_max=0.2,
            reconnect_timeout=3.0,
        )
        session = SmppSession(
            replace(config, **changes), on_receipt=on_receipt, on_message=on_message
        )
        sessions.append(session)
        if connect:
            session.connect()
        return session

    yield open_
    for s in sessions:
        s.close()
