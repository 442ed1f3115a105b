"""``dpi standards``: list, show and validate against the published schemas, and check compatibility.

Exit status: 0 for success, 1 for an invalid document or a breaking change, 2 for a problem with what the
command was given (an unknown schema, a file that cannot be read, parsed or walked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from standards._schemas import SchemaNotFound, load_schema, schema_names, schema_versions
from standards._validation import ROOT_POINTER_LABEL, validator
from standards.compat import breaking_changes

__all__ = ["standards_group"]


class _UsageProblem(click.ClickException):
    """A problem with what the command was given (exit status 2), as opposed to an invalid document (1)."""

    exit_code = 2


def _read_json(path: str) -> Any:
    """The JSON document in ``path``; a :class:`_UsageProblem` when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _UsageProblem(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _UsageProblem(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        raise _UsageProblem(_too_deep(path)) from None


def _too_deep(path: str) -> str:
    return f"{path} is nested too deeply to process"


def _shown(pointer: str) -> str:
    return pointer or ROOT_POINTER_LABEL


@click.group(name="standards")
def standards_group() -> None:
    """The published schemas, vocabularies and compatibility rules."""


@standards_group.command(name="list")
def list_schemas() -> None:
    """List every published schema with its versions."""
    for name in schema_names():
        click.echo(f"{name}  {' '.join(schema_versions(name))}")


@standards_group.command()
@click.argument("ref")
def show(ref: str) -> None:
    """Print the schema NAME[@VERSION] (the latest version when none is given)."""
    try:
        schema = load_schema(ref)
    except SchemaNotFound as error:
        raise _UsageProblem(str(error)) from None
    click.echo(json.dumps(schema, indent=2, ensure_ascii=False))


@standards_group.command()
@click.argument("ref")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(ref: str, file: str) -> None:
    """Validate the JSON document FILE against the schema NAME[@VERSION]; exit 1 listing every issue.

    Each issue is printed as POINTER: REASON_CODE: MESSAGE, the pointer (RFC 6901) shown as "(root)" for the
    whole document.
    """
    try:
        schema_validator = validator(ref)
    except SchemaNotFound as error:
        raise _UsageProblem(str(error)) from None
    instance = _read_json(file)
    try:
        issues = schema_validator.issues(instance)
    except RecursionError:
        raise _UsageProblem(_too_deep(file)) from None
    if not issues:
        click.echo(f"{file} is valid against {schema_validator.ref}")
        return
    for issue in issues:
        click.echo(f"{_shown(issue.pointer)}: {issue.reason_code}: {issue.message}")
    click.echo(f"{file} is not valid against {schema_validator.ref}: {len(issues)} issue(s)", err=True)
    raise SystemExit(1)


@standards_group.command(name="check-compat")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
def check_compat(old: str, new: str) -> None:
    """Report every backward-incompatible change from schema OLD to schema NEW; exit 1 if there is one."""
    old_schema, new_schema = _read_json(old), _read_json(new)
    if not isinstance(old_schema, dict) or not isinstance(new_schema, dict):
        raise _UsageProblem("both files must hold a JSON Schema object")
    try:
        changes = breaking_changes(old_schema, new_schema)
    except RecursionError:
        raise _UsageProblem(f"{old} or {new} is nested too deeply to compare") from None
    if not changes:
        click.echo(f"{new} is backward compatible with {old}")
        return
    for change in changes:
        click.echo(f"{_shown(change.pointer)}: {change.kind}: {change.message}")
    click.echo(f"{len(changes)} breaking change(s): publish a new MAJOR version instead", err=True)
    raise SystemExit(1)
