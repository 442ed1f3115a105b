"""The change feed of a registry: ``GET /registry/{code}/v1/changes?since=`` lists every new version of its
records (created, updated, corrected, deleted, merged, unmerged...) in order, ids only, with a cursor, so
that a subscriber catches up after missed notifications.

- Order: by time of the version, then record id and version number; ``next`` is an opaque cursor for the
  page after the last item, and ``since`` takes it (or an RFC 3339 time, to start from a moment).
- The feed stops :data:`SETTLE` before the present: a transaction that started earlier but commits
  later can still add versions that old, and a cursor must never step over a version it has not seen.
- Items carry ids, the action and the time only (no document, no actor): a subscriber reads the record
  through the API its access allows, and that read is logged.
- Reading the feed needs a read scope on the registry (``registry:{code}:read`` or a field group).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import and_, or_, select

from dpi.contract import Contract, Parameter
from dpi.errors import DpiError
from registry.auth import bearer_token, granted_groups, registry_scope, require_scope
from registry.models import VersionRow
from registry.service import RegistryService, timestamp

if TYPE_CHECKING:
    from registry.block import RegistryRuntime

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "SETTLE", "build_routes", "changes"]

SETTLE: Final = timedelta(seconds=5)
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Position = tuple[datetime, str, int]


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cursor(position: Position) -> str:
    at, record_id, version = position
    raw = json.dumps([_aware(at).isoformat(), record_id, version]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid_since() -> DpiError:
    return DpiError("request.invalid_parameter", "since must be a cursor of this feed or an RFC 3339 time")


def _position(since: str) -> Position | datetime:
    """A cursor's position, or the moment an RFC 3339 ``since`` names."""
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})", since):
        try:
            return datetime.fromisoformat(since).astimezone(UTC)
        except ValueError:
            raise _invalid_since() from None
    try:
        at, record_id, version = json.loads(base64.urlsafe_b64decode(since + "=" * (-len(since) % 4)))
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError):
        raise _invalid_since() from None
    if not isinstance(record_id, str) or not _UUID.match(record_id) or type(version) is not int:
        raise _invalid_since()
    if moment.tzinfo is None:
        raise _invalid_since()
    return moment.astimezone(UTC), record_id, version


async def changes(
    service: RegistryService, code: str, *, since: str | None, limit: int, now: datetime
) -> dict[str, Any]:
    """One page of the feed of registry ``code`` (``registry-change-feed``)."""
    service.definition(code)
    position = _position(since) if since else None
    conditions = [VersionRow.registry_code == code, VersionRow.at <= now - SETTLE]
    if isinstance(position, datetime):
        conditions.append(VersionRow.at > position)
    elif position is not None:
        at, record_id, version = position
        conditions.append(
            or_(
                VersionRow.at > at,
                and_(VersionRow.at == at, VersionRow.record_id > record_id),
                and_(VersionRow.at == at, VersionRow.record_id == record_id, VersionRow.version > version),
            )
        )
    async with service.sessions() as session:
        rows = (
            await session.scalars(
                select(VersionRow)
                .where(*conditions)
                .order_by(VersionRow.at, VersionRow.record_id, VersionRow.version)
                .limit(limit + 1)
            )
        ).all()
    page, more = rows[:limit], len(rows) > limit
    items: list[dict[str, Any]] = []
    for row in page:
        item: dict[str, Any] = {
            "record_id": row.record_id,
            "version": row.version,
            "action": row.action,
            "at": timestamp(row.at),
        }
        if row.other_record_id is not None:
            item["other_record_id"] = row.other_record_id
        items.append(item)
    body: dict[str, Any] = {"registry": code, "items": items, "more": more}
    if page:
        last = page[-1]
        body["next"] = _cursor((last.at, last.record_id, last.version))
    elif since:
        body["next"] = since
    return body


_CODE_PARAMETER = Parameter(
    "code",
    "path",
    {"type": "string", "maxLength": 32, "pattern": "^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"},
    description="The registry's code.",
)
_SINCE = Parameter(
    "since",
    "query",
    {"type": "string", "maxLength": 200},
    required=False,
    description="next of an earlier page, or an RFC 3339 time; from the first version when absent.",
)
_LIMIT = Parameter("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, required=False)


def build_routes(runtime: RegistryRuntime, clock: Callable[[], datetime]) -> list[HTTPRouteHandler]:
    """The change feed's handler, bound to ``runtime``."""

    @get(
        "/{code:str}/v1/changes",
        opt=Contract(
            "New versions of the registry's records in order, ids only, with a cursor to catch up from",
            {200: "registry-change-feed@1.0.0"},
            parameters=(_CODE_PARAMETER, _SINCE, _LIMIT),
            tags=("registry",),
            errors=(400, 401, 403, 404, 405, 500),
        ).as_opt(),
    )
    async def change_feed(request: Request[Any, Any, Any]) -> dict[str, Any]:
        definition = runtime.service.definition(str(request.path_params["code"]))
        since_values = request.query_params.getall("since", [])
        limit_values = request.query_params.getall("limit", [])
        if len(since_values) > 1 or len(limit_values) > 1:
            raise DpiError("request.invalid_parameter", "since and limit are given at most once")
        limit = DEFAULT_LIMIT
        if limit_values:
            if not re.fullmatch(r"[0-9]{1,4}", limit_values[0]) or not 1 <= int(limit_values[0]) <= MAX_LIMIT:
                raise DpiError("request.invalid_parameter", f"limit must be 1 to {MAX_LIMIT}")
            limit = int(limit_values[0])
        since = since_values[0] if since_values else None
        if since is not None:
            _position(since)
        principal = await runtime.verifier.verify(bearer_token(request.headers.get("authorization")))
        groups = granted_groups(principal, definition.code, frozenset(definition.field_groups))
        if groups is not None and not groups:
            require_scope(principal, registry_scope(definition.code, "read"))
        return await changes(runtime.service, definition.code, since=since, limit=limit, now=clock())

    return [change_feed]
