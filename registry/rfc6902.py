"""JSON Patch (RFC 6902, https://www.rfc-editor.org/rfc/rfc6902): what changed between two versions of a
record, and how to replay it.

Only ``add``, ``remove`` and ``replace`` are produced; objects are compared member by member, and an
array that changed is replaced whole (record arrays are short, and a whole array reads better in a
history than index arithmetic).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["apply", "diff"]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python; in JSON they are different values.
    return type(old) is type(new) and old == new


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """The operations that turn ``old`` into ``new``; ``[]`` when they are equal."""
    if _same(old, new):
        return []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [{"op": "replace", "path": path, "value": copy.deepcopy(new)}]
    operations: list[dict[str, Any]] = []
    for key in sorted(old.keys() - new.keys()):
        operations.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
    for key in sorted(new.keys()):
        child = f"{path}/{_escape(key)}"
        if key not in old:
            operations.append({"op": "add", "path": child, "value": copy.deepcopy(new[key])})
        else:
            operations += diff(old[key], new[key], child)
    return operations


def apply(document: Any, operations: list[dict[str, Any]]) -> Any:
    """``document`` with ``operations`` applied (a copy; the argument is not changed)."""
    result = copy.deepcopy(document)
    for operation in operations:
        path = operation["path"]
        if path == "":
            result = copy.deepcopy(operation.get("value"))
            continue
        tokens = [_unescape(token) for token in path.split("/")[1:]]
        parent = result
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        if operation["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if operation["op"] == "add":
                parent.insert(index, copy.deepcopy(operation["value"]))
            else:
                parent[index] = copy.deepcopy(operation["value"])
        else:
            parent[last] = copy.deepcopy(operation["value"])
    return result
