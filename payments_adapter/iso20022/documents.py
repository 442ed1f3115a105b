"""ISO 20022 XML documents read safely and checked against the official XSDs.

ISO 20022 message definitions: https://www.iso20022.org/iso-20022-message-definitions. The XSDs this
block speaks are in ``xsd/`` beside this module (their source and terms in ``xsd/README.md``).

Files come from outside (a bank's server, an operator's upload), so the parser resolves no entity,
loads no DTD and reaches no network; a document type declaration is refused outright, since no ISO 20022
message has one and it is how entity-expansion bombs and external-entity reads arrive. A file is read
only whole and only within a size limit, and refused with a reason code when it is not well-formed XML,
not a message this block reads, or not valid against its XSD.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

from lxml import etree

from payments_adapter.contract import ProviderError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "MESSAGES",
    "Document",
    "Iso20022FileError",
    "iso_date",
    "iso_datetime",
    "read_document",
    "start_of_day",
    "validate",
]

XSD_DIRECTORY: Final = Path(__file__).parent / "xsd"
_NAMESPACE_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"

#: The messages this block writes or reads, by name; each has its XSD in ``xsd/<name>.xsd``.
MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        name: _NAMESPACE_PREFIX + name
        for name in ("pain.001.001.09", "pain.002.001.03", "pain.002.001.12", "camt.054.001.08")
    }
)

DEFAULT_MAX_FILE_BYTES: Final = 32 * 1024 * 1024
_DATE: Final = re.compile(r"^(-?[0-9]{4,}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?$")
_FRACTION: Final = re.compile(r"(\.[0-9]{6})[0-9]+")
_ERRORS_SHOWN: Final = 3


class Iso20022FileError(ProviderError):
    """An ISO 20022 file refused as a whole; ``reason_code`` is one of ``payments.file.*``."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(reason_code, message, retryable=False)


@dataclass(frozen=True)
class Document:
    """A well-formed, schema-valid ISO 20022 message: its name (``pain.002.001.12``) and its root."""

    message: str
    root: etree._Element

    @property
    def namespace(self) -> str:
        return MESSAGES[self.message]

    def find(self, element: etree._Element, path: str) -> etree._Element | None:
        """The first element at ``path`` (``GrpHdr/MsgId``) under ``element``, in this message's namespace."""
        found = element
        for tag in self._tags(path):
            child = next(found.iterchildren(tag), None)
            if child is None:
                return None
            found = child
        return found

    def find_all(self, element: etree._Element, path: str) -> list[etree._Element]:
        """Every element at ``path`` under ``element``, in document order."""
        level = [element]
        for tag in self._tags(path):
            level = [child for parent in level for child in parent.iterchildren(tag)]
        return level

    def text(self, element: etree._Element, path: str) -> str | None:
        """The text at ``path`` under ``element``, stripped, or ``None`` when the element is absent."""
        found = self.find(element, path)
        if found is None or found.text is None:
            return None
        return found.text.strip()

    def _tags(self, path: str) -> tuple[str, ...]:
        return _qualified(self.namespace, path)


@cache
def _qualified(namespace: str, path: str) -> tuple[str, ...]:
    return tuple(f"{{{namespace}}}{step}" for step in path.split("/"))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@cache
def _schema(message: str) -> etree.XMLSchema:
    path = XSD_DIRECTORY / f"{message}.xsd"
    return etree.XMLSchema(etree.parse(str(path), _parser()))


def validate(message: str, root: etree._Element) -> list[str]:
    """The XSD's complaints about ``root`` as ``message`` (empty when valid), each with its line."""
    schema = _schema(message)
    try:
        schema.assertValid(root)
    except etree.DocumentInvalid as invalid:
        return [f"line {error.line}: {error.message}" for error in invalid.error_log]
    return []


def read_document(
    content: bytes, *, accept: Collection[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Document:
    """Parse ``content`` as one of the ``accept``-ed messages and validate it against its XSD.

    Raises :class:`Iso20022FileError` with ``payments.file.too_large``, ``payments.file.malformed``
    (not well-formed, or carrying a document type declaration), ``payments.file.unsupported`` (another
    message or version) or ``payments.file.invalid`` (not valid against the XSD).
    """
    if not isinstance(content, bytes):
        raise Iso20022FileError("payments.file.malformed", "an ISO 20022 file is read as bytes")
    if len(content) > max_bytes:
        raise Iso20022FileError(
            "payments.file.too_large", f"the file has {len(content)} bytes; at most {max_bytes} are read"
        )
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise Iso20022FileError("payments.file.malformed", "a document type declaration is not allowed")
    try:
        tree = etree.ElementTree(etree.fromstring(content, _parser()))
    except etree.XMLSyntaxError as error:
        raise Iso20022FileError("payments.file.malformed", f"not well-formed XML: {error}") from None
    # A declaration in another encoding (UTF-16) escapes the byte scan above; the parser still saw it.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise Iso20022FileError("payments.file.malformed", "a document type declaration is not allowed")
    root = tree.getroot()
    qualified = etree.QName(root)
    message = qualified.namespace.removeprefix(_NAMESPACE_PREFIX) if qualified.namespace else ""
    if qualified.localname != "Document" or MESSAGES.get(message) != qualified.namespace:
        raise Iso20022FileError(
            "payments.file.unsupported",
            f"the root element {root.tag!r} is not an ISO 20022 Document this block reads",
        )
    if message not in accept:
        raise Iso20022FileError(
            "payments.file.unsupported", f"{message} is not one of {', '.join(sorted(accept))}"
        )
    problems = validate(message, root)
    if problems:
        shown = "; ".join(problems[:_ERRORS_SHOWN])
        raise Iso20022FileError("payments.file.invalid", f"not valid against the {message} XSD: {shown}")
    return Document(message, root)


def iso_datetime(text: str | None) -> datetime:
    """An ISODateTime (xs:dateTime) as an aware datetime in UTC.

    Without an offset ISO 20022 means the sender's local time, which a reader cannot know; UTC is
    assumed rather than letting a naive datetime into a block that is UTC everywhere.
    """
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", (text or "").strip()))
    except ValueError:
        raise Iso20022FileError("payments.file.invalid", f"{text!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_date(text: str | None) -> date:
    """An ISODate (xs:date, possibly with an offset, which a booking date does not need)."""
    match = _DATE.match((text or "").strip())
    try:
        if match is None:
            raise ValueError(text)
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise Iso20022FileError("payments.file.invalid", f"{text!r} is not a date") from None


def start_of_day(day: date) -> datetime:
    """Midnight UTC of ``day``: when an entry booked on a date (without a time) is taken to be booked."""
    return datetime.combine(day, time(0), tzinfo=UTC)
