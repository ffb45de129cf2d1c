"""The alert state machine, pure: every allowed and every refused transition."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast.alerts import TRANSITIONS, Action, allowed_actions, next_status
from broadcast.errors import InvalidTransition
from broadcast.models import AlertStatus as S

EXPECTED = {
    (S.DRAFT, Action.SUBMIT): S.PENDING_APPROVAL,
    (S.DRAFT, Action.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, Action.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, Action.SCHEDULE): S.SCHEDULED,
    (S.PENDING_APPROVAL, Action.REJECT): S.DRAFT,
    (S.PENDING_APPROVAL, Action.WITHDRAW): S.DRAFT,
    (S.PENDING_APPROVAL, Action.CANCEL): S.CANCELLED,
    (S.APPROVED, Action.START): S.SENDING,
    (S.APPROVED, Action.CANCEL): S.CANCELLED,
    (S.SCHEDULED, Action.START): S.SENDING,
    (S.SCHEDULED, Action.CANCEL): S.CANCELLED,
    (S.SENDING, Action.PAUSE): S.PAUSED,
    (S.SENDING, Action.CANCEL): S.CANCELLED,
    (S.SENDING, Action.COMPLETE): S.COMPLETED,
    (S.PAUSED, Action.RESUME): S.SENDING,
    (S.PAUSED, Action.CANCEL): S.CANCELLED,
    (S.PAUSED, Action.COMPLETE): S.COMPLETED,
}
ALL_PAIRS = list(itertools.product(S, Action))


def test_the_table_is_the_design() -> None:
    assert EXPECTED == TRANSITIONS


@pytest.mark.parametrize(("status", "action"), list(EXPECTED))
def test_allowed_transition(status: S, action: Action) -> None:
    assert next_status(status, action) == EXPECTED[(status, action)]


@pytest.mark.parametrize(("status", "action"), [pair for pair in ALL_PAIRS if pair not in EXPECTED])
def test_refused_transition_names_status_and_action(status: S, action: Action) -> None:
    with pytest.raises(InvalidTransition) as err:
        next_status(status, action)
    assert repr(status.value) in str(err.value)
    assert repr(action.value) in str(err.value)


def test_final_states_have_no_way_out() -> None:
    assert allowed_actions(S.COMPLETED) == []
    assert allowed_actions(S.CANCELLED) == []
    with pytest.raises(InvalidTransition, match="nothing"):
        next_status(S.COMPLETED, Action.RESUME)


def test_unknown_action_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="'launch'"):
        next_status(S.DRAFT, "launch")  # type: ignore[arg-type]


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_any_walk_stays_in_the_machine(actions: list[Action]) -> None:
    """From a draft, whatever is tried, only table moves happen and nothing leaves a final state."""
    status = S.DRAFT
    for action in actions:
        try:
            new = next_status(status, action)
        except InvalidTransition:
            continue
        assert status not in (S.COMPLETED, S.CANCELLED)
        if new == S.SENDING:
            assert status in (S.APPROVED, S.SCHEDULED, S.PAUSED)  # never sent unapproved
        status = new
