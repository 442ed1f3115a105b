"""The ``dpi identity`` commands."""

from __future__ import annotations

import click

from identity.cli_clients import client_group

__all__ = ["identity_group"]


@click.group(name="identity")
def identity_group() -> None:
    """The identity block: OpenID clients (more to come)."""


identity_group.add_command(client_group, name="client")
