"""The consent lifecycle as data: states, actions, and the one table of allowed transitions.

States and their meaning follow ISO/IEC TS 27560 and the W3C Data Privacy Vocabulary consent
statuses (https://w3c.github.io/dpv/dpv/#vocab-consent-status). Any (state, action) pair absent
from :data:`TRANSITIONS`, or taken by a role the table does not name, is refused with
``consent.transition_not_allowed`` or ``consent.actor_not_allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "OPEN_STATES",
    "PERMITTING_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Action",
    "ActorRole",
    "Channel",
    "State",
    "Transition",
    "TransitionRefused",
    "transition",
]


class State(StrEnum):
    REQUESTED = "REQUESTED"
    ACTIVE = "ACTIVE"
    REFUSED = "REFUSED"
    DEFERRED = "DEFERRED"
    PAUSED = "PAUSED"
    WITHDRAWN = "WITHDRAWN"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    INVALIDATED = "INVALIDATED"
    SUPERSEDED = "SUPERSEDED"


class Action(StrEnum):
    REQUEST = "request"
    APPROVE = "approve"
    REFUSE = "refuse"
    DEFER = "defer"
    PAUSE = "pause"
    RESUME = "resume"
    WITHDRAW = "withdraw"
    REVOKE = "revoke"
    EXPIRE = "expire"
    INVALIDATE = "invalidate"
    SUPERSEDE = "supersede"
    REQUIRE_RECONFIRMATION = "require_reconfirmation"


class ActorRole(StrEnum):
    SUBJECT = "subject"
    GUARDIAN = "guardian"
    OPERATOR = "operator"
    CONTROLLER = "controller"
    PROVIDER = "provider"
    AUTHORITY = "authority"
    SYSTEM = "system"


class Channel(StrEnum):
    WEB = "web"
    SMS = "sms"
    ASSISTED = "assisted"
    API = "api"
    SYSTEM = "system"


PERMITTING_STATES: Final = frozenset({State.ACTIVE})
TERMINAL_STATES: Final = frozenset(
    {State.REFUSED, State.WITHDRAWN, State.REVOKED, State.EXPIRED, State.INVALIDATED, State.SUPERSEDED}
)
OPEN_STATES: Final = frozenset(State) - TERMINAL_STATES

_PERSON: Final = frozenset({ActorRole.SUBJECT, ActorRole.GUARDIAN, ActorRole.OPERATOR})
_CONTROLLER: Final = frozenset({ActorRole.CONTROLLER, ActorRole.PROVIDER})
_AUTHORITY: Final = frozenset({ActorRole.AUTHORITY})
_SYSTEM: Final = frozenset({ActorRole.SYSTEM})


@dataclass(frozen=True)
class Transition:
    """Where an action leads from a state, and who may take it."""

    target: State
    roles: frozenset[ActorRole]


def _from(
    states: frozenset[State] | set[State], action: Action, target: State, roles: frozenset[ActorRole]
) -> dict[tuple[State, Action], Transition]:
    return {(state, action): Transition(target, roles) for state in states}


# The whole lifecycle. Reading guide: the person (subject, guardian, or an operator with the subject
# present) decides on requests and may pause, resume and withdraw; the controller or provider may
# revoke; an authority may invalidate; the system expires, supersedes and asks for reconfirmation.
# Withdrawal needs the consent to be in force (ACTIVE or PAUSED); a request not yet answered is refused
# instead. Nothing leaves a terminal state.
TRANSITIONS: Final[dict[tuple[State, Action], Transition]] = {
    **_from({State.REQUESTED, State.DEFERRED}, Action.APPROVE, State.ACTIVE, _PERSON),
    **_from({State.REQUESTED, State.DEFERRED}, Action.REFUSE, State.REFUSED, _PERSON),
    **_from({State.REQUESTED}, Action.DEFER, State.DEFERRED, _PERSON),
    **_from({State.ACTIVE}, Action.PAUSE, State.PAUSED, _PERSON),
    **_from({State.PAUSED}, Action.RESUME, State.ACTIVE, _PERSON),
    **_from({State.ACTIVE, State.PAUSED}, Action.WITHDRAW, State.WITHDRAWN, _PERSON),
    **_from(
        {State.REQUESTED, State.DEFERRED, State.ACTIVE, State.PAUSED},
        Action.REVOKE,
        State.REVOKED,
        _CONTROLLER,
    ),
    **_from(set(OPEN_STATES), Action.INVALIDATE, State.INVALIDATED, _AUTHORITY),
    **_from(set(OPEN_STATES), Action.EXPIRE, State.EXPIRED, _SYSTEM),
    **_from(set(OPEN_STATES), Action.SUPERSEDE, State.SUPERSEDED, _SYSTEM),
    **_from({State.ACTIVE, State.PAUSED}, Action.REQUIRE_RECONFIRMATION, State.REQUESTED, _SYSTEM),
}


class TransitionRefused(Exception):
    """An action the table does not allow from this state, or not for this role."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


def transition(state: State, action: Action, role: ActorRole) -> State:
    """The state ``action`` by ``role`` leads to from ``state``, or :class:`TransitionRefused`."""
    allowed = TRANSITIONS.get((state, action))
    if allowed is None:
        raise TransitionRefused(
            "consent.transition_not_allowed", f"{action.value} is not allowed on a {state.value} consent"
        )
    if role not in allowed.roles:
        raise TransitionRefused(
            "consent.actor_not_allowed",
            f"the {role.value} may not {action.value.replace('_', ' ')} this consent",
        )
    return allowed.target
