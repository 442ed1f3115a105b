"""Profile ``registry-dci``: a registry's DCI (SPDCI) registry API 1.0, https://github.com/spdci/standards
(requirements RDC-001..RDC-014), tested exactly as its capabilities document declares it.

The suite is a registered DCI sender (:class:`~conformance_tests.dci_sender.DciOptions`): it signs its own
envelopes, verifies every answer and callback with the registry's published keys, and hosts the callback
receiver asynchronous answers and notifications are delivered to. Nothing of the implementation is imported.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import standards
from conformance_tests.dci_sender import DciOptions, dci_time
from conformance_tests.model import Finding, Profile
from conformance_tests.receiver import CallbackReceiver, CallbackTimeout, ReceivedCallback
from conformance_tests.registry import register_profile
from conformance_tests.target import Exchange, TargetSession
from dpi.keys import SigningKey
from dpi.signing import SignatureError, verify_detached

__all__ = ["REGISTRY_DCI"]

REGISTRY_DCI = register_profile(
    Profile(
        name="registry-dci",
        version="1.0.0",
        description="A registry's DCI API: envelopes, signatures, queries, pagination, callbacks, events.",
    )
)

NO_OPTIONS: Final = (
    "the registry-dci profile needs the suite registered as a DCI sender: run with --dci-registry, "
    "--dci-sender-id, --dci-sender-key and --dci-identifier (see docs/conformance.md)"
)
NO_EVENT: Final = "no --dci-event-request: the suite cannot make the registry emit an event to be notified of"
_NOWHERE: Final = "dpi-conformance-matches-nothing"
_ANSWER_ACTIONS: Final = {
    "sync/search": "on-search",
    "txn/status": "txn-on-status",
    "subscribe": "on-subscribe",
    "unsubscribe": "on-unsubscribe",
}
_VALUES: Final[Mapping[str, Mapping[str, Any]]] = {
    "number": {"one": 1, "low": 0, "high": 1_000_000},
    "date": {"one": "2000-01-01", "low": "1900-01-01", "high": "2100-12-31"},
    "boolean": {"one": True, "low": False, "high": True},
    "string": {"one": "dpi-conformance", "low": "a", "high": "z"},
}


@dataclass
class _Registry:
    """The registry under test as the suite sees it: the options, what it declares, its keys."""

    options: DciOptions
    declared: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def base(self) -> str:
        return str(self.declared.get("base_url", f"/registry/{self.options.registry}")).rstrip("/")

    def path(self, endpoint: str) -> str:
        return f"{self.base}/registry/{endpoint}"

    @property
    def max_page_size(self) -> int:
        return int(self.declared["pagination"]["max_page_size"])

    @property
    def max_batch(self) -> int:
        return int(self.declared["batch"]["max_items"])

    def item(
        self, query_type: str, query: Any, reference_id: str = "ref-1", **criteria: Any
    ) -> dict[str, Any]:
        """A ``search_request`` item made for the suite's purpose."""
        return {
            "reference_id": reference_id,
            "timestamp": dci_time(datetime.now(UTC)),
            "search_criteria": {
                "version": "1.0.0",
                "query_type": query_type,
                "query": query,
                "consent": {"purpose": self.options.purpose},
                **criteria,
            },
        }

    def known(self, reference_id: str = "known") -> dict[str, Any]:
        return self.item(
            "idtype-value", {"type": self.options.id_type, "value": self.options.id_value}, reference_id
        )

    def everything(self, reference_id: str = "all", **criteria: Any) -> dict[str, Any]:
        """A predicate every record satisfies: not (a text attribute equals a value nobody holds)."""
        text = next(
            (
                a
                for a in self.declared.get("attributes", [])
                if a.get("type") == "string" and "eq" in a.get("operators", [])
            ),
            None,
        )
        name = text["name"] if text else "dpi_conformance"
        query = [{"seq_num": 1, "expression1": _comparison(name, "eq", _NOWHERE), "condition": "not"}]
        return self.item("predicate", query, reference_id, **criteria)


def _comparison(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute_name": attribute, "operator": operator, "attribute_value": value}


def _value(kind: str, operator: str) -> Any:
    values = _VALUES.get(kind, _VALUES["string"])
    if operator == "in":
        return [values["one"]]
    if operator == "between":
        return [values["low"], values["high"]]
    if operator == "prefix":
        return "d"
    return values["one"]


def _declared_dci(document: Mapping[str, Any] | None, code: str) -> dict[str, Any] | None:
    for block in (document or {}).get("blocks", []):
        for registry in block.get("registries", []) if isinstance(block, Mapping) else []:
            if isinstance(registry, Mapping) and registry.get("code") == code:
                dci = registry.get("dci")
                return dict(dci) if isinstance(dci, Mapping) else None
    return None


async def _registry(session: TargetSession) -> _Registry | None:
    """The registry under test, read once per run from the capabilities document."""
    if "registry-dci" in session.state:
        found: _Registry | None = session.state["registry-dci"]
        return found
    options = session.options.dci
    registry = _Registry(options) if options is not None else None
    if registry is not None:
        declared = _declared_dci(await session.capabilities_document(), registry.options.registry)
        issues = standards.validator("dci-capabilities").issues(declared) if declared is not None else []
        if declared is None:
            registry.problem = (
                f"the capabilities document declares no DCI API for {registry.options.registry!r}"
            )
        elif issues:
            registry.problem = (
                f"the declared DCI API is not a valid dci-capabilities document: {issues[0].message}"
            )
        else:
            registry.declared = declared
            keys = await session.request("GET", str(declared["signature"]["jwks_uri"]))
            registry.jwks = keys.json_object() or {"keys": []}
    session.state["registry-dci"] = registry
    return registry


def _unavailable(requirements: Sequence[str], registry: _Registry | None) -> list[Finding] | None:
    if registry is None:
        return [Finding.skipped(requirement, NO_OPTIONS) for requirement in requirements]
    if registry.problem is not None:
        return [Finding.failed(requirement, registry.problem) for requirement in requirements]
    return None


async def _send(
    session: TargetSession, registry: _Registry, endpoint: str, envelope: Mapping[str, Any]
) -> Exchange:
    return await session.request("POST", registry.path(endpoint), json_body=dict(envelope))


async def _search(
    session: TargetSession,
    registry: _Registry,
    *items: Mapping[str, Any],
    endpoint: str = "sync/search",
    transaction_id: str | None = None,
    **header: Any,
) -> Exchange:
    message = {"transaction_id": transaction_id or str(uuid.uuid4()), "search_request": list(items)}
    envelope = registry.options.envelope(
        registry.options.header("search", total_count=len(items), **header), message
    )
    return await _send(session, registry, endpoint, envelope)


def _answers(exchange: Exchange) -> list[dict[str, Any]]:
    message = (exchange.json_object() or {}).get("message")
    answers = message.get("search_response") if isinstance(message, Mapping) else None
    return [a for a in answers if isinstance(a, dict)] if isinstance(answers, list) else []


def _only_answer(exchange: Exchange) -> dict[str, Any]:
    answers = _answers(exchange)
    return answers[0] if exchange.status == 200 and len(answers) == 1 else {}


def _records(answer: Mapping[str, Any]) -> list[Any]:
    records = (answer.get("data") or {}).get("reg_records")
    return records if isinstance(records, list) else []


def _signature_problem(document: Mapping[str, Any] | None, jwks: Mapping[str, Any]) -> str | None:
    if document is None:
        return "the body is not a JSON object"
    signature = document.get("signature")
    if not isinstance(signature, str) or not signature:
        return "the envelope carries no signature"
    try:
        verify_detached(
            {"header": document.get("header"), "message": document.get("message")}, signature, jwks
        )
    except SignatureError as error:
        return f"the signature does not verify with the published keys ({error.reason_code})"
    return None


def _refused(requirement: str, exchange: Exchange, status: int | None, code: str, what: str) -> Finding:
    """A 4xx dci-error with ``code`` (and exactly ``status`` when given)."""
    error = ((exchange.json_object() or {}).get("message") or {}).get("error") or {}
    right_status = (
        exchange.status == status if status else exchange.status is not None and 400 <= exchange.status < 500
    )
    if right_status and error.get("code") == code:
        return Finding.passed(requirement, f"{what}: {exchange.status} {code}")
    return Finding.failed(
        requirement,
        f"{what}: answered {exchange.status} {error.get('code')!r}",
        exchange.evidence(f"{status or '4xx'} with the dci-error code {code}"),
    )


def _item_refused(requirement: str, exchange: Exchange, what: str, code: str | None = None) -> Finding:
    answer = _only_answer(exchange)
    reason = str(answer.get("status_reason_code", ""))
    if answer.get("status") == "rjct" and reason.startswith("rjct.") and (code is None or reason == code):
        return Finding.passed(requirement, f"{what}: refused in the item's answer with {reason}")
    return Finding.failed(
        requirement,
        f"{what}: not refused in the item's answer (status {answer.get('status')!r}, reason {reason!r})",
        exchange.evidence(f"200 with the item answered rjct {code or 'rjct.*'}"),
    )


# --- declaration and envelopes --------------------------------------------------------------------


@REGISTRY_DCI.test("capabilities", ["RDC-001"])
async def capabilities(session: TargetSession) -> list[Finding]:
    """The registry's DCI API is declared: query types, attributes and operators, limits, algorithms, keys."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-001"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    declared = registry.declared
    problems = []
    if "idtype-value" not in declared["query_types"]:
        problems.append("idtype-value is not among the declared query types")
    if not declared["signature"].get("algorithms"):
        problems.append("no signature algorithm is declared")
    if not registry.jwks.get("keys"):
        problems.append(f"the declared JWKS {declared['signature']['jwks_uri']} holds no key")
    if problems:
        return [Finding.failed("RDC-001", "; ".join(problems))]
    return [
        Finding.passed(
            "RDC-001",
            f"{len(declared['attributes'])} attributes, page cap {registry.max_page_size}, "
            f"batch limit {registry.max_batch}, algorithms {', '.join(declared['signature']['algorithms'])}",
        )
    ]


def _answer_problem(exchange: Exchange, registry: _Registry) -> str | None:
    endpoint = exchange.url.split("/registry/", 2)[-1] if exchange.url.count("/registry/") >= 2 else ""
    document = exchange.json_object()
    if exchange.status is not None and 400 <= exchange.status < 500:
        issues = standards.validator("dci-error").issues(document) if document is not None else []
        return None if document is not None and not issues else "a refusal that is not a dci-error body"
    if exchange.status != 200:
        return f"answered {exchange.status}, neither 200 nor a 4xx refusal"
    if endpoint == "search":
        message = (document or {}).get("message") or {}
        return (
            None if message.get("ack_status") in {"ACK", "NACK"} else "an acknowledgement without ack_status"
        )
    problem = _signature_problem(document, registry.jwks)
    if problem is not None:
        return problem
    header = (document or {}).get("header") or {}
    expected = _ANSWER_ACTIONS.get(endpoint)
    if expected is not None and header.get("action") != expected:
        return f"the header's action is {header.get('action')!r}, not {expected}"
    if header.get("receiver_id") != registry.options.sender_id or not header.get("status"):
        return "the header does not name the requester as receiver, or has no status"
    return None


@REGISTRY_DCI.test("every-answer", ["RDC-002"], observes_traffic=True)
async def every_answer(session: TargetSession) -> list[Finding]:
    """Every DCI answer of the run: a signed envelope for the action, or a 4xx dci-error."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-002"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    sent = [
        exchange
        for exchange in session.exchanges
        if exchange.method == "POST" and session.url(registry.base + "/registry/") in exchange.url
    ]
    failures = [
        Finding.failed("RDC-002", problem, exchange.evidence("a signed DCI answer or a dci-error"))
        for exchange in sent
        if (problem := _answer_problem(exchange, registry)) is not None
    ]
    if not sent:
        return [Finding.failed("RDC-002", "no DCI answer was received during the run")]
    return failures[:5] or [Finding.passed("RDC-002", f"{len(sent)} answers, each signed or a dci-error")]


@REGISTRY_DCI.test("signature-missing", ["RDC-003"])
async def signature_missing(session: TargetSession) -> list[Finding]:
    """No signature member and an empty one: 401 err.signature.missing; the search is not stored."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-003"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    findings = []
    transaction_id = str(uuid.uuid4())
    for label, signature in (("no signature member", None), ("an empty signature", "")):
        message = {"transaction_id": transaction_id, "search_request": [registry.known()]}
        envelope = registry.options.envelope(registry.options.header("search"), message)
        if signature is None:
            del envelope["signature"]
        else:
            envelope["signature"] = signature
        exchange = await _send(session, registry, "search", envelope)
        findings.append(_refused("RDC-003", exchange, 401, "err.signature.missing", label))
    status = await _txn_status(session, registry, transaction_id)
    stored = status.status == 200
    findings.append(
        Finding.failed("RDC-003", "an unsigned search was stored", status.evidence("nothing stored"))
        if stored
        else Finding.passed("RDC-003", "the unsigned searches left no transaction")
    )
    return findings


@REGISTRY_DCI.test("signature-invalid", ["RDC-004"])
async def signature_invalid(session: TargetSession) -> list[Finding]:
    """An altered message, another key, a malformed JWS: 401 err.signature.invalid."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-004"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    options = registry.options
    message = {"transaction_id": str(uuid.uuid4()), "search_request": [registry.known()]}
    altered = options.envelope(options.header("search"), message)
    altered["message"] = {**message, "transaction_id": str(uuid.uuid4())}
    stranger = options.envelope(options.header("search"), message, key=SigningKey.generate("EdDSA"))
    malformed = {**options.envelope(options.header("search"), message), "signature": "not.a..jws"}
    findings = []
    for label, envelope in (
        ("a message altered after signing", altered),
        ("a signature by a key the sender never registered", stranger),
        ("a malformed signature", malformed),
    ):
        exchange = await _send(session, registry, "sync/search", envelope)
        findings.append(_refused("RDC-004", exchange, 401, "err.signature.invalid", label))
    return findings


@REGISTRY_DCI.test("replay-window", ["RDC-005", "RDC-006"])
async def replay_window(session: TargetSession) -> list[Finding]:
    """A message id used twice is refused the second time; message_ts outside the window is refused."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-005", "RDC-006"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    message_id = str(uuid.uuid4())
    first = await _search(session, registry, registry.known(), message_id=message_id)
    again = await _search(session, registry, registry.known(), message_id=message_id)
    findings = []
    if first.status != 200:
        findings.append(
            Finding.failed("RDC-005", "a first, valid message was not answered", first.evidence("200"))
        )
    else:
        findings.append(
            _refused("RDC-005", again, None, "rjct.message_id.duplicate", "the same message_id again")
        )
    window = timedelta(seconds=int(registry.declared["message_window_seconds"]))
    for label, moment in (
        ("message_ts before the window", datetime.now(UTC) - window - timedelta(minutes=2)),
        ("message_ts after the window", datetime.now(UTC) + window + timedelta(minutes=2)),
    ):
        exchange = await _search(session, registry, registry.known(), message_ts=dci_time(moment))
        findings.append(_refused("RDC-006", exchange, None, "rjct.message_ts.invalid", label))
    return findings


# --- queries --------------------------------------------------------------------------------------


@REGISTRY_DCI.test("idtype-value", ["RDC-007"])
async def idtype_value(session: TargetSession) -> list[Finding]:
    """The known identifier is found, one nobody holds finds nothing, an undeclared type is refused."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-007"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    options = registry.options
    findings = []
    found = await _search(session, registry, registry.known())
    answer = _only_answer(found)
    if answer.get("status") == "succ" and _records(answer):
        findings.append(
            Finding.passed("RDC-007", f"{options.id_type} found ({len(_records(answer))} record)")
        )
    else:
        findings.append(
            Finding.failed(
                "RDC-007",
                f"the known {options.id_type} was not found",
                found.evidence("succ with the record"),
            )
        )
    nobody = registry.item("idtype-value", {"type": options.id_type, "value": _NOWHERE})
    missing = _only_answer(await _search(session, registry, nobody))
    if missing.get("status") in {"succ", "rjct"} and not _records(missing):
        findings.append(
            Finding.passed("RDC-007", f"an identifier nobody holds: {missing.get('status')}, no record")
        )
    else:
        findings.append(
            Finding.failed("RDC-007", f"an identifier nobody holds answered {missing or 'no item answer'}")
        )
    undeclared = registry.item(
        "idtype-value", {"type": "DPI-CONFORMANCE-NO-SUCH-TYPE", "value": options.id_value}
    )
    findings.append(
        _item_refused(
            "RDC-007", await _search(session, registry, undeclared), "an undeclared identifier type"
        )
    )
    return findings


def _declared_comparisons(registry: _Registry) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (
            attribute["name"],
            operator,
            _comparison(attribute["name"], operator, _value(attribute["type"], operator)),
        )
        for attribute in registry.declared["attributes"]
        for operator in attribute["operators"]
    ]


@REGISTRY_DCI.test("predicate", ["RDC-008"])
async def predicate(session: TargetSession) -> list[Finding]:
    """Every declared operator of every attribute answers; and/or/not answer; undeclared ones are refused."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-008"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    comparisons = _declared_comparisons(registry)
    items = [
        (
            f"{name} {operator}",
            registry.item("predicate", [{"seq_num": 1, "expression1": expression}], f"op-{index}"),
        )
        for index, (name, operator, expression) in enumerate(comparisons)
    ]
    if len(comparisons) >= 2:
        first, second = comparisons[0][2], comparisons[1][2]
        for condition in ("and", "or", "not"):
            query = [{"seq_num": 1, "expression1": first, "condition": condition, "expression2": second}]
            items.append((f"condition {condition}", registry.item("predicate", query, f"cond-{condition}")))
    findings: list[Finding] = []
    unanswered: list[str] = []
    size = max(1, min(registry.max_batch, 50))
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        exchange = await _search(session, registry, *(item for _, item in chunk))
        answers = _answers(exchange)
        for position, (label, _) in enumerate(chunk):
            answer = answers[position] if position < len(answers) else {}
            if answer.get("status") != "succ":
                unanswered.append(f"{label} ({answer.get('status_reason_code', 'no answer')})")
                if len(findings) < 5:
                    findings.append(
                        Finding.failed("RDC-008", f"declared {label} not answered", exchange.evidence("succ"))
                    )
    if not unanswered:
        findings.append(Finding.passed("RDC-008", f"{len(items)} declared operators and conditions answered"))
    offered = {"eq", "gt", "ge", "lt", "le", "in", *registry.declared.get("extension_operators", [])}
    for attribute in registry.declared["attributes"]:
        missing = sorted(offered - set(attribute["operators"]))
        if missing:
            expression = _comparison(attribute["name"], missing[0], _value(attribute["type"], missing[0]))
            item = registry.item("predicate", [{"seq_num": 1, "expression1": expression}])
            exchange = await _search(session, registry, item)
            findings.append(
                _item_refused("RDC-008", exchange, f"undeclared operator {missing[0]} on {attribute['name']}")
            )
            break
    stranger = registry.item(
        "predicate",
        [{"seq_num": 1, "expression1": _comparison("dpi_conformance_no_such_attribute", "eq", "x")}],
    )
    findings.append(
        _item_refused("RDC-008", await _search(session, registry, stranger), "an undeclared attribute")
    )
    return findings


@REGISTRY_DCI.test("pagination", ["RDC-009"])
async def pagination(session: TargetSession) -> list[Finding]:
    """Out-of-bounds pages refused; pages bounded, counted, and not overlapping."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-009"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    findings = []
    cap = registry.max_page_size
    for label, bounds in (
        (f"page_size {cap + 1}, above the declared cap", {"page_size": cap + 1, "page_number": 1}),
        ("page_size 0", {"page_size": 0, "page_number": 1}),
        ("page_number 0", {"page_size": 1, "page_number": 0}),
    ):
        exchange = await _search(session, registry, registry.everything(pagination=bounds))
        findings.append(_item_refused("RDC-009", exchange, label, "rjct.pagination.invalid"))
    pages = []
    for number in (1, 2):
        exchange = await _search(
            session, registry, registry.everything(pagination={"page_size": 1, "page_number": number})
        )
        pages.append((exchange, _only_answer(exchange)))
    (first, one), (_, two) = pages
    counted = [answer.get("pagination") or {} for answer in (one, two)]
    if one.get("status") != "succ" or not all(isinstance(c.get("total_count"), int) for c in counted):
        findings.append(
            Finding.failed(
                "RDC-009", "a page answered without total_count", first.evidence("succ with pagination")
            )
        )
        return findings
    total = counted[0]["total_count"]
    problems = []
    if any(len(_records(answer)) > 1 for answer in (one, two)):
        problems.append("a page of size 1 held more than one record")
    if counted[0].get("page_size") != 1 or counted[1].get("page_number") != 2:
        problems.append("the answer does not report the page asked for")
    if total >= 2 and _records(one) == _records(two):
        problems.append("pages 1 and 2 hold the same records")
    if problems:
        findings.append(Finding.failed("RDC-009", "; ".join(problems), first.evidence("bounded pages")))
    else:
        findings.append(
            Finding.passed("RDC-009", f"pages of 1 over {total} records, counted, not overlapping")
        )
    return findings


@REGISTRY_DCI.test("batch", ["RDC-010"])
async def batch(session: TargetSession) -> list[Finding]:
    """One refused item in a batch leaves the others answered, in order; an oversized batch is refused."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-010"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    bad = registry.item(
        "predicate",
        [{"seq_num": 1, "expression1": _comparison("dpi_conformance_no_such_attribute", "eq", "x")}],
        "bad",
    )
    exchange = await _search(session, registry, registry.known("good-1"), bad, registry.known("good-2"))
    seen = [(answer.get("reference_id"), answer.get("status")) for answer in _answers(exchange)]
    expected = [("good-1", "succ"), ("bad", "rjct"), ("good-2", "succ")]
    findings = [
        Finding.passed("RDC-010", "the refused item did not touch the two others")
        if seen == expected
        else Finding.failed(
            "RDC-010", f"answers {seen}, not {expected}", exchange.evidence("per-item outcomes")
        )
    ]
    oversized = [registry.known(f"item-{index}") for index in range(registry.max_batch + 1)]
    too_many = await _search(session, registry, *oversized)
    findings.append(
        Finding.passed("RDC-010", f"{len(oversized)} items: refused with {too_many.status}")
        if too_many.status is not None
        and 400 <= too_many.status < 500
        and not standards.validator("dci-error").issues(too_many.json_object())
        else Finding.failed(
            "RDC-010",
            f"a batch above the declared {registry.max_batch} items answered {too_many.status}",
            too_many.evidence("a 4xx dci-error"),
        )
    )
    return findings


@REGISTRY_DCI.test("undeclared-query-types", ["RDC-011"])
async def undeclared_query_types(session: TargetSession) -> list[Finding]:
    """Query types the registry does not declare are refused per item."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-011"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    findings = []
    declared = set(registry.declared["query_types"])
    for query_type, query in (
        ("expression", {"type": "ns:org:QueryType:NoSql", "value": {"expression": {"$where": "1 == 1"}}}),
        ("dpi-conformance-query", {"anything": True}),
    ):
        if query_type in declared:
            continue
        exchange = await _search(session, registry, registry.item(query_type, query))
        findings.append(_item_refused("RDC-011", exchange, f"query_type {query_type}"))
    return findings or [Finding.skipped("RDC-011", "every query type tried is declared")]


# --- asynchronous flows ---------------------------------------------------------------------------


async def _txn_status(session: TargetSession, registry: _Registry, transaction_id: str) -> Exchange:
    options = registry.options
    message = {
        "transaction_id": str(uuid.uuid4()),
        "txnstatus_request": {
            "reference_id": "status",
            "txn_type": "search",
            "attribute_type": "transaction_id",
            "attribute_value": transaction_id,
        },
    }
    return await _send(
        session, registry, "txn/status", options.envelope(options.header("txn-status"), message)
    )


def _callback_for(endpoint: str, member: str, key: str, value: str) -> Any:
    def matches(message: ReceivedCallback) -> bool:
        if not message.path.rstrip("/").endswith(endpoint):
            return False
        try:
            body = message.json()
        except ValueError:
            return False
        content = body.get("message") if isinstance(body, dict) else None
        if not isinstance(content, dict):
            return False
        if member == "":
            return content.get(key) == value
        entries = content.get(member)
        return isinstance(entries, list) and any(isinstance(e, dict) and e.get(key) == value for e in entries)

    return matches


@REGISTRY_DCI.test("async-search", ["RDC-012", "RDC-013"])
async def async_search(session: TargetSession) -> list[Finding]:
    """ACK, then a signed on-search callback with every item's answer; txn/status reports it, signed."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-012", "RDC-013"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    options = registry.options
    transaction_id = str(uuid.uuid4())
    findings: list[Finding] = []
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        ack = await _search(
            session,
            registry,
            registry.known("first"),
            registry.known("second"),
            endpoint="search",
            transaction_id=transaction_id,
        )
        message = (ack.json_object() or {}).get("message") or {}
        if ack.status != 200 or message.get("ack_status") != "ACK" or not message.get("correlation_id"):
            return [
                Finding.failed(
                    "RDC-012",
                    f"the search was not acknowledged (answered {ack.status})",
                    ack.evidence("200 ACK with a correlation_id"),
                ),
                Finding.failed("RDC-013", "no asynchronous search to ask about"),
            ]
        try:
            callback = await receiver.wait_for(
                _callback_for("on-search", "", "transaction_id", transaction_id),
                timeout=session.options.callback_timeout,
            )
        except CallbackTimeout as timeout:
            callback = None
            findings.append(Finding.failed("RDC-012", f"no on-search callback arrived: {timeout}"))
    if callback is not None:
        document = callback.json()
        problem = _signature_problem(document if isinstance(document, dict) else None, registry.jwks)
        answers = (document.get("message") or {}).get("search_response") or []
        references = [answer.get("reference_id") for answer in answers if isinstance(answer, dict)]
        if problem is not None:
            findings.append(Finding.failed("RDC-012", f"the on-search callback: {problem}"))
        elif references != ["first", "second"]:
            findings.append(Finding.failed("RDC-012", f"the on-search callback answers items {references}"))
        else:
            findings.append(
                Finding.passed("RDC-012", "ACK, then a signed on-search callback answering both items")
            )
    status = await _txn_status(session, registry, transaction_id)
    body = status.json_object()
    report = ((body or {}).get("message") or {}).get("txnstatus_response") or {}
    problem = _signature_problem(body, registry.jwks) if status.status == 200 else f"answered {status.status}"
    if (
        problem is None
        and report.get("txn_status") == "succ"
        and len(report.get("search_response") or []) == 2
    ):
        findings.append(
            Finding.passed("RDC-013", "txn/status reports the search complete with its answers, signed")
        )
    else:
        findings.append(
            Finding.failed(
                "RDC-013",
                problem or f"txn/status reports {report.get('txn_status')!r}",
                status.evidence("a signed succ status with the answers"),
            )
        )
    return findings


@REGISTRY_DCI.test("subscribe-notify", ["RDC-014"])
async def subscribe_notify(session: TargetSession) -> list[Finding]:
    """Subscribe to every declared event type, make the registry emit an event, receive a signed notify,
    then unsubscribe."""
    registry = await _registry(session)
    unavailable = _unavailable(["RDC-014"], registry)
    if unavailable is not None or registry is None:
        return unavailable or []
    options = registry.options
    if options.event is None:
        return [Finding.skipped("RDC-014", NO_EVENT)]
    criteria = {"version": "1.0.0", "reg_event_type": list(registry.declared["event_types"])}
    message = {
        "transaction_id": str(uuid.uuid4()),
        "subscribe_request": [
            {
                "reference_id": "conformance",
                "timestamp": dci_time(datetime.now(UTC)),
                "subscribe_criteria": criteria,
            }
        ],
    }
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        subscribed = await _send(
            session, registry, "subscribe", options.envelope(options.header("subscribe"), message)
        )
        answers = ((subscribed.json_object() or {}).get("message") or {}).get("subscribe_response") or [{}]
        code = answers[0].get("subscription_code") if isinstance(answers[0], dict) else None
        if subscribed.status != 200 or answers[0].get("status") != "succ" or not isinstance(code, str):
            return [
                Finding.failed(
                    "RDC-014",
                    "the subscription was not accepted",
                    subscribed.evidence("succ with a subscription_code"),
                )
            ]
        event = options.event
        trigger = await session.request(event.method, event.path, headers=event.headers, json_body=event.body)
        if trigger.status is None or not 200 <= trigger.status < 300:
            return [
                Finding.failed(
                    "RDC-014", f"the event request answered {trigger.status}", trigger.evidence("2xx")
                )
            ]
        try:
            notice = await receiver.wait_for(
                _callback_for("notify", "notify_event", "subscription_code", code),
                timeout=session.options.callback_timeout,
            )
        except CallbackTimeout as timeout:
            notice = None
            finding = Finding.failed("RDC-014", f"no notify arrived for the subscription: {timeout}")
    if notice is not None:
        document = notice.json()
        problem = _signature_problem(document if isinstance(document, dict) else None, registry.jwks)
        finding = (
            Finding.failed("RDC-014", f"the notify: {problem}")
            if problem is not None
            else Finding.passed("RDC-014", "the event arrived as a signed notify")
        )
    ended = await _send(
        session,
        registry,
        "unsubscribe",
        options.envelope(
            options.header("unsubscribe"), {"transaction_id": str(uuid.uuid4()), "subscription_codes": [code]}
        ),
    )
    outcome = ((ended.json_object() or {}).get("message") or {}).get("unsubscribe_response") or [{}]
    if ended.status != 200 or not isinstance(outcome[0], dict) or outcome[0].get("status") != "succ":
        return [finding, Finding.failed("RDC-014", "unsubscribing was not accepted", ended.evidence("succ"))]
    return [finding]
