"""How a route declares its wire contract: the ``standards`` schemas of its bodies.

Every HTTP handler carries a :class:`Contract` in its ``opt`` under ``"contract"``; the OpenAPI
document is built from these declarations only, so a body without a published schema cannot
be documented and the test over the document catches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["CONTRACT_KEY", "Body", "Contract", "Parameter"]

CONTRACT_KEY: Final = "contract"


@dataclass(frozen=True)
class Parameter:
    """A path or query parameter and its JSON Schema."""

    name: str
    location: str
    schema: Mapping[str, Any]
    required: bool = True
    description: str = ""

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "in": self.location,
            "required": self.required,
            "schema": dict(self.schema),
        }
        if self.description:
            document["description"] = self.description
        return document


@dataclass(frozen=True)
class Body:
    """A body that is not JSON (a form, an HTML page, a JWT): its ``standards`` schema and media type."""

    schema: str
    media_type: str = "application/json"


@dataclass(frozen=True)
class Contract:
    """Summary, request body schema and response body schemas of one operation.

    A schema is named ``name@version`` (a JSON body), or given as a :class:`Body` for another media type;
    a tuple offers several media types for one status (content negotiation), and ``None`` declares a
    response without a body (a redirect).
    """

    summary: str
    responses: Mapping[int, str | Body | tuple[str | Body, ...] | None]
    request: str | Body | None = None
    parameters: tuple[Parameter, ...] = ()
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default=(400, 404, 405, 413, 415, 500))

    def as_opt(self) -> dict[str, Any]:
        return {CONTRACT_KEY: self}
