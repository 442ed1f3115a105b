"""The lifecycle table: every pair it does not list is refused, terminal states stay terminal."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.lifecycle import (
    PERMITTING_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    ActorRole,
    State,
    TransitionRefused,
    transition,
)

ALL_PAIRS = list(itertools.product(State, Action))


@pytest.mark.parametrize(("state", "action"), [pair for pair in ALL_PAIRS if pair not in TRANSITIONS])
def test_unlisted_transitions_are_refused(state: State, action: Action) -> None:
    for role in ActorRole:
        with pytest.raises(TransitionRefused) as refused:
            transition(state, action, role)
        assert refused.value.reason_code == "consent.transition_not_allowed"


@pytest.mark.parametrize(("state", "action"), sorted(TRANSITIONS))
def test_listed_transitions_only_for_their_roles(state: State, action: Action) -> None:
    allowed = TRANSITIONS[(state, action)]
    for role in ActorRole:
        if role in allowed.roles:
            assert transition(state, action, role) is allowed.target
        else:
            with pytest.raises(TransitionRefused) as refused:
                transition(state, action, role)
            assert refused.value.reason_code == "consent.actor_not_allowed"


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (State.WITHDRAWN, Action.APPROVE),
        (State.WITHDRAWN, Action.REFUSE),
        (State.REVOKED, Action.REFUSE),
        (State.REVOKED, Action.APPROVE),
        (State.INVALIDATED, Action.RESUME),
        (State.INVALIDATED, Action.APPROVE),
        (State.EXPIRED, Action.RESUME),
        (State.REFUSED, Action.APPROVE),
        (State.SUPERSEDED, Action.APPROVE),
        (State.REQUESTED, Action.WITHDRAW),
        (State.REQUESTED, Action.PAUSE),
        (State.ACTIVE, Action.APPROVE),
        (State.PAUSED, Action.PAUSE),
    ],
)
def test_the_cases_citizens_and_auditors_ask_about(state: State, action: Action) -> None:
    with pytest.raises(TransitionRefused):
        transition(state, action, ActorRole.SUBJECT)


def test_nothing_leaves_a_terminal_state() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL_STATES]


def test_only_active_permits_and_only_approval_or_resumption_reach_it() -> None:
    assert frozenset({State.ACTIVE}) == PERMITTING_STATES
    into_active = {pair for pair, rule in TRANSITIONS.items() if rule.target is State.ACTIVE}
    assert {action for _, action in into_active} == {Action.APPROVE, Action.RESUME}


@given(st.lists(st.tuples(st.sampled_from(Action), st.sampled_from(ActorRole)), max_size=30))
def test_any_history_respects_the_table(steps: list[tuple[Action, ActorRole]]) -> None:
    state = State.REQUESTED
    for action, role in steps:
        try:
            following = transition(state, action, role)
        except TransitionRefused:
            continue
        assert state not in TERMINAL_STATES
        assert (state, action) in TRANSITIONS
        state = following
