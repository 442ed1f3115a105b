"""``dpi conformance``: list the profiles, run them against a target URL, verify a signed summary.

Exit codes of ``run``: 0 when every MUST requirement passed, 1 otherwise, 2 for usage errors (a bad option,
an unreadable or refused baseline or signing key, a report directory that cannot be written) and an
unreachable target. ``verify`` exits 0 for a valid summary, 1 for an invalid one, 2 when the summary or the
JWKS cannot be read. Every exit 2 prints one line, ``dpi conformance: <reason>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console

import standards
from conformance_tests.dci_sender import DciOptions, load_event_request
from conformance_tests.payments_provider import PaymentsOptions
from conformance_tests.registry import UnknownProfile, known_profiles
from conformance_tests.relying_party import OidcOptions, load_client
from conformance_tests.reports import print_summary, write_reports
from conformance_tests.results import Baseline
from conformance_tests.runner import check_target_url, run_conformance
from conformance_tests.signed_summary import load_jwks, load_signing_key, verify_summary
from conformance_tests.target import RunOptions, TargetUnreachable
from conformance_tests.tokens import TokenMinter
from dpi.keys import SigningKey

__all__ = ["conformance_group"]


class _UsageProblem(click.ClickException):
    """What the command was given cannot be used: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"dpi conformance: {self.format_message()}", err=True)


def _prepare_report_dir(report_dir: Path) -> None:
    """Create ``report_dir`` and prove it writable before the run, not after it."""
    probe = report_dir / ".dpi-conformance-write-check"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise _UsageProblem(f"cannot write reports to {report_dir}: {error.strerror or error}") from None


@click.group("conformance")
def conformance_group() -> None:
    """Test a system against the dpi-blocks standards over HTTP, and check signed results."""


@conformance_group.command("list")
def list_profiles() -> None:
    """Every profile with its requirements: id, level, statement."""
    catalogue = {requirement.id: requirement for requirement in standards.requirements()}
    for name, profile in known_profiles().items():
        click.echo(f"{name} {profile.version}: {profile.description}".rstrip(": "))
        order = list(catalogue)
        cited = sorted(
            profile.requirement_ids, key=lambda rid: order.index(rid) if rid in order else len(order)
        )
        for requirement_id in cited:
            requirement = catalogue.get(requirement_id)
            level = requirement.level if requirement else "?"
            statement = requirement.statement if requirement else "(not in the catalogue)"
            click.echo(f"  {requirement_id}  {level:<6}  {statement}")


@conformance_group.command("run")
@click.option(
    "--target", required=True, help="Base URL of the system under test, e.g. https://registry.example."
)
@click.option(
    "--profile",
    "profile_names",
    multiple=True,
    default=("platform",),
    show_default=True,
    help="Profile to run; repeat for several.",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("conformance-report"),
    show_default=True,
    help="Directory for the reports.",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key signing summary.jws (default: a fresh key, published as jwks.json).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of accepted SHOULD and MAY failures: "
    '{"accepted": [{"requirement": "ID", "reason": "..."}]}. '
    "A MUST requirement (or an ID not in the catalogue) in it is refused with exit status 2: "
    "a MUST failure always fails the run.",
)
@click.option(
    "--max-examples",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="Generated requests per operation and per mode (valid, invalid).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated requests.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each response.",
)
@click.option(
    "--token-key",
    type=click.Path(path_type=Path),
    help="PEM private key the suite signs access tokens with (profiles with authorised APIs, e.g. consent); "
    "the target must trust its JWKS, printed by `dpi conformance token-jwks`.",
)
@click.option(
    "--token-issuer",
    default="urn:dpi:conformance",
    show_default=True,
    help="Issuer (iss) of the suite's access tokens, as configured on the target.",
)
@click.option(
    "--callback-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    help="Seconds to wait for an asynchronous message (a notification or callback).",
)
@click.option(
    "--oidc-client",
    "oidc_clients",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="identity-oidc: JSON file of a client registered for the run (client_id, redirect_uri, and "
    "client_secret or private_jwk); give two of different sectors, and optionally a third of the first's "
    "sector.",
)
@click.option("--oidc-person", help="identity-oidc: the UIN or virtual ID the test person signs in with.")
@click.option("--oidc-uin", help="identity-oidc: the test person's UIN, searched for in every response.")
@click.option("--oidc-issuer", help="identity-oidc: the provider's issuer URL (default: TARGET/identity).")
@click.option(
    "--sms-gateway-listen",
    default="127.0.0.1:8790",
    show_default=True,
    help="identity-oidc: HOST:PORT where the suite receives one-time codes as the provider's SMS gateway.",
)
@click.option("--dci-registry", help="registry-dci: the code of the registry under test, e.g. civil.")
@click.option("--dci-sender-id", help="registry-dci: the sender id the suite is registered under.")
@click.option(
    "--dci-sender-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="registry-dci: PEM private key the suite signs envelopes with; its public keys, printed by "
    "`dpi conformance sender-jwks`, are registered for the sender.",
)
@click.option(
    "--dci-identifier", help="registry-dci: TYPE:VALUE, an identifier a record of the registry holds."
)
@click.option(
    "--dci-purpose",
    default="official-statistics",
    show_default=True,
    help="registry-dci: the purpose code the suite's searches are made for.",
)
@click.option(
    "--dci-callback-listen",
    default="127.0.0.1:8791",
    show_default=True,
    help="registry-dci: HOST:PORT where the suite receives on-search and notify callbacks (the sender's "
    "callback URL must reach it).",
)
@click.option(
    "--dci-event-request",
    type=click.Path(dir_okay=False, path_type=Path),
    help="registry-dci: JSON file of one request (method, path, headers, body) that makes the registry "
    "emit an event, sent after the suite subscribed.",
)
@click.option("--pay-sender-id", help="payments-provider: the sender id the suite is registered under.")
@click.option(
    "--pay-sender-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="payments-provider: PEM private key the suite signs envelopes with (its public keys, printed by "
    "`dpi conformance sender-jwks`, are registered for the sender).",
)
@click.option("--pay-receiver-id", help="payments-provider: the provider's id, the receiver_id of requests.")
@click.option("--pay-payer-fa", help="payments-provider: the account@provider the suite pays from.")
@click.option("--pay-payee-fa", help="payments-provider: a payable account@provider the suite pays to.")
@click.option(
    "--pay-currency", default="XOF", show_default=True, help="payments-provider: the currency paid."
)
@click.option(
    "--pay-amount", default="100.00", show_default=True, help="payments-provider: the amount of each payment."
)
@click.option(
    "--pay-base",
    default="/payments/g2p",
    show_default=True,
    help="payments-provider: the path of the provider's G2P Connect disburse API.",
)
@click.option(
    "--pay-callback-listen",
    default="127.0.0.1:8792",
    show_default=True,
    help="payments-provider: HOST:PORT where the suite receives on-disburse and on-status callbacks (the "
    "sender's registered callback URL must reach it).",
)
def run(
    target: str,
    profile_names: tuple[str, ...],
    report_dir: Path,
    sign_key: Path | None,
    baseline: Path | None,
    max_examples: int,
    seed: int,
    timeout: float,
    token_key: Path | None,
    token_issuer: str,
    callback_timeout: float,
    oidc_clients: tuple[Path, ...],
    oidc_person: str | None,
    oidc_uin: str | None,
    oidc_issuer: str | None,
    sms_gateway_listen: str,
    dci_registry: str | None,
    dci_sender_id: str | None,
    dci_sender_key: Path | None,
    dci_identifier: str | None,
    dci_purpose: str,
    dci_callback_listen: str,
    dci_event_request: Path | None,
    pay_sender_id: str | None,
    pay_sender_key: Path | None,
    pay_receiver_id: str | None,
    pay_payer_fa: str | None,
    pay_payee_fa: str | None,
    pay_currency: str,
    pay_amount: str,
    pay_base: str,
    pay_callback_listen: str,
) -> None:
    """Run PROFILEs against TARGET and write the terminal, JUnit, JSON, HTML and signed reports.

    Exit status: 0 when every MUST requirement passed, 1 when one did not, 2 for a usage problem or an
    unreachable target.
    """
    try:
        base_url = check_target_url(target)
    except ValueError as error:
        raise _UsageProblem(str(error)) from None
    known = known_profiles()
    unknown = [name for name in profile_names if name not in known]
    if unknown:
        raise _UsageProblem(str(UnknownProfile(unknown[0], sorted(known))))
    try:
        accepted = Baseline.load(baseline) if baseline is not None else Baseline()
        key = load_signing_key(sign_key) if sign_key is not None else SigningKey.generate()
        tokens = TokenMinter(load_signing_key(token_key), token_issuer) if token_key is not None else None
        oidc = _oidc_options(oidc_clients, oidc_person, oidc_uin, oidc_issuer, sms_gateway_listen)
        dci = _dci_options(
            dci_registry,
            dci_sender_id,
            dci_sender_key,
            dci_identifier,
            dci_purpose,
            dci_callback_listen,
            dci_event_request,
        )
        payments = _payments_options(
            pay_sender_id,
            pay_sender_key,
            pay_receiver_id,
            pay_payer_fa,
            pay_payee_fa,
            pay_currency,
            pay_amount,
            pay_base,
            pay_callback_listen,
        )
    except ValueError as error:  # BaselineError is a ValueError
        raise _UsageProblem(str(error)) from None
    _prepare_report_dir(report_dir)
    options = RunOptions(
        max_examples=max_examples,
        seed=seed,
        timeout=timeout,
        tokens=tokens,
        callback_timeout=callback_timeout,
        oidc=oidc,
        dci=dci,
        payments=payments,
    )
    try:
        report = asyncio.run(run_conformance(base_url, profile_names, options=options, baseline=accepted))
    except TargetUnreachable as error:
        raise _UsageProblem(str(error)) from None
    print_summary(report, Console())
    try:
        files = write_reports(report, report_dir, key)
    except OSError as error:
        raise _UsageProblem(f"cannot write reports to {report_dir}: {error.strerror or error}") from None
    click.echo(
        f"Reports in {report_dir}: {files.html.name}, {files.junit.name}, {files.json.name}, "
        f"{files.summary.name} (verify with {files.jwks.name})"
    )
    sys.exit(0 if report.verdict == "pass" else 1)


def _oidc_options(
    clients: tuple[Path, ...], person: str | None, uin: str | None, issuer: str | None, listen: str
) -> OidcOptions | None:
    """The identity-oidc options, or None when no client is given; ``ValueError`` for unusable ones."""
    if not clients:
        return None
    if not person:
        raise ValueError("--oidc-client needs --oidc-person, the identifier the test person signs in with")
    host, port = _listen_address("--sms-gateway-listen", listen)
    return OidcOptions(
        clients=tuple(load_client(path) for path in clients),
        person=person,
        uin=uin,
        issuer=check_target_url(issuer) if issuer else None,
        sms_host=host,
        sms_port=port,
    )


def _listen_address(option: str, listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{option} must be HOST:PORT, got {listen!r}")
    return host, int(port)


def _dci_options(
    registry: str | None,
    sender_id: str | None,
    key: Path | None,
    identifier: str | None,
    purpose: str,
    listen: str,
    event: Path | None,
) -> DciOptions | None:
    """The registry-dci options, or None when no registry is named; ``ValueError`` for unusable ones."""
    if registry is None:
        return None
    if not sender_id or key is None or not identifier:
        raise ValueError("--dci-registry needs --dci-sender-id, --dci-sender-key and --dci-identifier")
    id_type, _, id_value = identifier.partition(":")
    if not id_type or not id_value:
        raise ValueError(f"--dci-identifier must be TYPE:VALUE, got {identifier!r}")
    host, port = _listen_address("--dci-callback-listen", listen)
    return DciOptions(
        registry=registry,
        sender_id=sender_id,
        key=load_signing_key(key),
        id_type=id_type,
        id_value=id_value,
        purpose=purpose,
        callback_host=host,
        callback_port=port,
        event=load_event_request(event) if event is not None else None,
    )


def _payments_options(
    sender_id: str | None,
    key: Path | None,
    receiver_id: str | None,
    payer_fa: str | None,
    payee_fa: str | None,
    currency: str,
    amount: str,
    base: str,
    listen: str,
) -> PaymentsOptions | None:
    """The payments-provider options, or None when no sender is named; ``ValueError`` for unusable ones."""
    if sender_id is None:
        return None
    if key is None or not receiver_id or not payer_fa or not payee_fa:
        raise ValueError(
            "--pay-sender-id needs --pay-sender-key, --pay-receiver-id, --pay-payer-fa and --pay-payee-fa"
        )
    if not base.startswith("/"):
        raise ValueError(f"--pay-base is a path starting with /, got {base!r}")
    host, port = _listen_address("--pay-callback-listen", listen)
    return PaymentsOptions(
        sender_id=sender_id,
        key=load_signing_key(key),
        receiver_id=receiver_id,
        payer_fa=payer_fa,
        payee_fa=payee_fa,
        currency=currency,
        amount=amount,
        base=base,
        callback_host=host,
        callback_port=port,
    )


def _print_jwks(key_path: Path) -> None:
    try:
        key = load_signing_key(key_path)
    except ValueError as error:
        raise _UsageProblem(str(error)) from None
    click.echo(json.dumps({"keys": [key.public_jwk()]}, indent=2))


@conformance_group.command("sender-jwks")
@click.option(
    "--dci-sender-key",
    type=click.Path(path_type=Path),
    required=True,
    help="The PEM key given to `run --dci-sender-key`.",
)
def sender_jwks(dci_sender_key: Path) -> None:
    """Print the JWKS the registry's operator registers for the suite's DCI sender
    (`dpi registry sender add SENDER_ID --jwks FILE ...`)."""
    _print_jwks(dci_sender_key)


@conformance_group.command("token-jwks")
@click.option(
    "--token-key", type=click.Path(path_type=Path), required=True, help="The PEM key given to `run`."
)
def token_jwks(token_key: Path) -> None:
    """Print the JWKS a target must trust to accept the suite's access tokens during a run."""
    _print_jwks(token_key)


@conformance_group.command("verify")
@click.argument("report", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--jwks", "jwks_source", required=True, help="JWKS file or URL holding the signer's public key."
)
def verify(report: Path, jwks_source: str) -> None:
    """Check the signature and content of a signed summary (summary.jws, or the report directory)."""
    token_path = report / "summary.jws" if report.is_dir() else report
    try:
        token = token_path.read_text(encoding="utf-8")
        jwks = load_jwks(jwks_source)
    except (OSError, UnicodeDecodeError) as error:
        raise _UsageProblem(
            f"cannot read {token_path}: {getattr(error, 'strerror', None) or error}"
        ) from None
    except ValueError as error:
        raise _UsageProblem(str(error)) from None
    outcome = verify_summary(token, jwks)
    if not outcome.valid:
        click.echo(f"INVALID: {token_path}")
        for problem in outcome.problems:
            click.echo(f"  {problem}")
        sys.exit(1)
    payload = outcome.payload
    counts = ", ".join(f"{count} {name}" for name, count in payload["counts"].items())
    click.echo(
        f"VALID: signed by {outcome.header.get('kid')}; target {payload['target']}; "
        f"verdict {payload['verdict']} ({counts}); finished {payload['finished_at']}"
    )
