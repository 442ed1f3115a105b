"""The secret behind the read log's subject hashes, kept in a file beside the other keys of a deployment."""

from __future__ import annotations

from pathlib import Path

from dpi.keys import load_or_create_secret
from dpi.settings import Settings

__all__ = ["subject_key", "subject_key_path"]


def subject_key_path(settings: Settings) -> Path:
    return settings.var_dir / "registry" / "subject-hash.key"


def subject_key(settings: Settings) -> bytes:
    """The secret of the read log's subject hashes, created (mode 0600) on first use. Losing it only
    unlinks past reads from the persons they were about; it must never be shared."""
    return load_or_create_secret(subject_key_path(settings))
