"""The payments block as the kernel sees it: routes under ``/payments``, its migrations and its CLI.

Registered under the entry-point group ``dpi.blocks`` as ``payments = "payments_adapter.block:block"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from dpi.blocks import Block

__all__ = ["MIGRATIONS", "VERSION", "block"]

VERSION: Final = "0.1.0"
MIGRATIONS: Final = Path(__file__).parent / "migrations"

block: Final = Block(name="payments", prefix="/payments", version=VERSION, migrations=MIGRATIONS)
