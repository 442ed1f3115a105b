"""The secret behind the read log's subject hashes, kept in a file beside the other keys of a deployment."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from dpi.settings import Settings

__all__ = ["subject_key", "subject_key_path"]

_KEY_SIZE: Final = 32


def subject_key_path(settings: Settings) -> Path:
    return settings.var_dir / "registry" / "subject-hash.key"


def subject_key(settings: Settings) -> bytes:
    """The secret of the read log's subject hashes, created (mode 0600) on first use. Losing it only
    unlinks past reads from the persons they were about; it must never be shared."""
    path = subject_key_path(settings)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(_KEY_SIZE))
    key = path.read_bytes()
    if len(key) != _KEY_SIZE:
        raise ValueError(f"{path} must hold exactly {_KEY_SIZE} bytes")
    return key
