"""The manifest of published schemas: the SHA-256 of every schema file, so a published file never changes.

Publishing a schema means adding a new ``schemas/<name>/<version>.json`` file and recording it here with
``python -m standards.manifest``, which only ever adds entries for new files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from standards._schemas import SCHEMA_DIRECTORY

__all__ = ["MANIFEST_PATH", "ManifestProblem", "check_manifest", "publish_new_schemas", "schema_digests"]

MANIFEST_PATH = Path(__file__).parent / "manifest.json"

_HOW_TO_PUBLISH = (
    "published schemas are immutable: restore the file and publish the change as a new version "
    "(schemas/<name>/<next version>.json), then run `python -m standards.manifest`"
)


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """A schema file that differs from the manifest: ``changed``, ``unrecorded`` or ``missing``."""

    path: str
    kind: str
    message: str


def schema_digests(directory: Path = SCHEMA_DIRECTORY) -> dict[str, str]:
    """``{"<name>/<version>.json": sha256 hex}`` of every schema file under ``directory``."""
    return {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.glob("*/*.json"))
    }


def _recorded(manifest_path: Path) -> dict[str, str]:
    if not manifest_path.exists():
        return {}
    recorded: dict[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))["schemas"]
    return recorded


def check_manifest(
    directory: Path = SCHEMA_DIRECTORY, manifest_path: Path = MANIFEST_PATH
) -> list[ManifestProblem]:
    """Every schema file that changed since it was published, was never recorded, or disappeared."""
    recorded = _recorded(manifest_path)
    actual = schema_digests(directory)
    problems: list[ManifestProblem] = []
    for path, digest in actual.items():
        if path not in recorded:
            problems.append(
                ManifestProblem(
                    path, "unrecorded", f"{path} is not in the manifest: run `python -m standards.manifest`"
                )
            )
        elif recorded[path] != digest:
            problems.append(
                ManifestProblem(path, "changed", f"{path} changed after publication: {_HOW_TO_PUBLISH}")
            )
    for path in recorded.keys() - actual.keys():
        problems.append(
            ManifestProblem(
                path, "missing", f"{path} was published and is gone: published schemas are never removed"
            )
        )
    return sorted(problems, key=lambda problem: problem.path)


def publish_new_schemas(directory: Path = SCHEMA_DIRECTORY, manifest_path: Path = MANIFEST_PATH) -> list[str]:
    """Record the digest of every schema file the manifest does not know yet; returns their paths.

    Entries already recorded are never rewritten, so a changed file keeps failing ``check_manifest``.
    """
    recorded = _recorded(manifest_path)
    added = {path: digest for path, digest in schema_digests(directory).items() if path not in recorded}
    if added:
        document = {"algorithm": "sha256", "schemas": dict(sorted({**recorded, **added}.items()))}
        manifest_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return sorted(added)


def main() -> int:
    """Record new schema files, then report any published file that changed or disappeared."""
    for path in publish_new_schemas():
        print(f"published {path}")
    problems = [problem for problem in check_manifest() if problem.kind != "unrecorded"]
    for problem in problems:
        print(problem.message, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
