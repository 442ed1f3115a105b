"""DCI subscriptions (SPDCI registry API 1.0 ``SubscribeRequest``, ``UnSubscribeRequest``,
``NotifyEventRequest``: https://github.com/spdci/standards): a sender subscribes to events of a registry
and is notified through its callback as they happen.

Event names a subscription takes in ``subscribe_criteria.reg_event_type`` (one or a list): the actions
``created``, ``updated``, ``corrected``, ``deleted``, ``merged``, ``unmerged``, and the record types of
the registry, which name the creation of such a record: in the civil registry ``birth``, ``death`` and
``marriage`` are the life events. Anything else is ``rjct.notify_types.invalid`` for that item.

Notifications carry ids only (registry, record id and type, version, action, and the other record of a
merge): the subscriber reads what it needs through the search its grants allow, and that read is logged.
Every change of the registry enqueues its event in the outbox in the change's own transaction;
:func:`fan_out` turns each event into one ``notify`` per matching subscription in a single transaction,
so an event is fanned out exactly once whatever the number of dispatchers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update

from dpi import outbox
from dpi.errors import DpiError
from registry.dci.envelope import wire_time
from registry.dci.senders import Sender
from registry.definition import RegistryDefinition
from registry.models import DciSubscriptionRow
from registry.service import EVENT_TOPIC_PREFIX, RegistryService

__all__ = [
    "ACTIONS",
    "NOTIFY_TOPIC",
    "event_names",
    "fan_out",
    "subscribe",
    "unsubscribe",
]

ACTIONS: Final = ("created", "updated", "corrected", "deleted", "merged", "unmerged")
NOTIFY_TOPIC: Final = "registry.dci.notify"
ACTIVE: Final = "active"
UNSUBSCRIBED: Final = "unsubscribed"
_FAN_OUT_LEASE: Final = timedelta(seconds=60)


def event_names(definition: RegistryDefinition) -> list[str]:
    """The event names a subscription to ``definition`` may name."""
    return [*ACTIONS, *(kind for kind in definition.record_types if kind not in ACTIONS)]


def _matches(events: Sequence[str], event: Mapping[str, Any]) -> bool:
    action = event.get("action")
    return action in events or (action == "created" and event.get("record_type") in events)


def _events(definition: RegistryDefinition, criteria: Mapping[str, Any]) -> list[str]:
    named = criteria.get("reg_event_type")
    events = [named] if isinstance(named, str) else named
    allowed = event_names(definition)
    if not isinstance(events, list) or not events or not all(event in allowed for event in events):
        raise DpiError("rjct.notify_types.invalid", f"reg_event_type is one or more of {', '.join(allowed)}")
    return list(dict.fromkeys(events))


async def subscribe(
    service: RegistryService,
    definition: RegistryDefinition,
    sender: Sender,
    items: Sequence[Any],
    *,
    now: datetime,
    problems: Mapping[int, str],
) -> list[dict[str, Any]]:
    """One ``subscribe_response`` entry per item, in order; the accepted ones stored together."""
    answers: list[dict[str, Any]] = []
    rows: list[DciSubscriptionRow] = []
    for index, item in enumerate(items):
        entry = item if isinstance(item, Mapping) else {}
        answer: dict[str, Any] = {
            "reference_id": str(entry.get("reference_id", "")),
            "timestamp": wire_time(now),
        }
        try:
            if index in problems:
                raise DpiError("rjct.notify_details.invalid", problems[index])
            events = _events(definition, entry["subscribe_criteria"])
        except DpiError as refusal:
            answer.update(
                status="rjct",
                status_reason_code=refusal.reason_code,
                status_reason_message=(refusal.custom_message or refusal.reason.message("en"))[:999],
            )
            answers.append(answer)
            continue
        code = str(uuid.uuid4())
        rows.append(
            DciSubscriptionRow(
                subscription_code=code,
                sender_id=sender.sender_id,
                registry_code=definition.code,
                reference_id=answer["reference_id"],
                events=events,
                status=ACTIVE,
                created_at=now,
                ended_at=None,
            )
        )
        answers.append({**answer, "status": "succ", "subscription_code": code, "reg_event_type": events})
    if rows:
        async with service.sessions.begin() as session:
            session.add_all(rows)
    return answers


async def unsubscribe(
    service: RegistryService, registry: str, sender: Sender, codes: Sequence[str], *, now: datetime
) -> list[dict[str, Any]]:
    """End the sender's subscriptions ``codes``; each code's outcome (another sender's is not found)."""
    answers: list[dict[str, Any]] = []
    async with service.sessions.begin() as session:
        for code in dict.fromkeys(codes):
            ended = await session.execute(
                update(DciSubscriptionRow)
                .where(
                    DciSubscriptionRow.subscription_code == code,
                    DciSubscriptionRow.sender_id == sender.sender_id,
                    DciSubscriptionRow.registry_code == registry,
                    DciSubscriptionRow.status == ACTIVE,
                )
                .values(status=UNSUBSCRIBED, ended_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(ended, "rowcount", 0) == 1:
                answers.append({"subscription_code": code, "status": "succ"})
            else:
                answers.append(
                    {
                        "subscription_code": code,
                        "status": "rjct",
                        "status_reason_code": "rjct.subscription_code.invalid",
                    }
                )
    return answers


async def fan_out(service: RegistryService, *, limit: int = 100) -> int:
    """Turn waiting registry events into notifications of the subscriptions they match; how many events."""
    topics = [f"{EVENT_TOPIC_PREFIX}.{code}.{action}" for code in service.definitions for action in ACTIONS]
    async with service.sessions.begin() as session:
        events = await outbox.claim(session, topics=topics, limit=limit, lease=_FAN_OUT_LEASE)
        if not events:
            return 0
        registries = {str(event.payload.get("registry")) for event in events}
        subscriptions = (
            await session.scalars(
                select(DciSubscriptionRow).where(
                    DciSubscriptionRow.registry_code.in_(sorted(registries)),
                    DciSubscriptionRow.status == ACTIVE,
                )
            )
        ).all()
        for event in events:
            for subscription in subscriptions:
                if subscription.registry_code == event.payload.get("registry") and _matches(
                    subscription.events, event.payload
                ):
                    await outbox.enqueue(
                        session,
                        NOTIFY_TOPIC,
                        {
                            "subscription_code": subscription.subscription_code,
                            "event_id": event.id,
                            "event": dict(event.payload),
                        },
                        key=subscription.subscription_code,
                    )
        await outbox.mark_delivered(session, [event.id for event in events])
    return len(events)
