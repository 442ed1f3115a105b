"""Scopes of the registry management API; the tokens themselves are the kernel's (:mod:`dpi.tokens`).

Scopes name the registry they apply to, so one deployment can host the registries of several
ministries without a token for one reaching another:

=================================  =================================================================
``registry:{code}:read``           read whole records of registry ``code``, and their history
``registry:{code}:read:{group}``   read records reduced to one field group of the definition
``registry:{code}:write``          create, update and delete records
``registry:{code}:correct``        propose corrections (change requests)
``registry:{code}:approve``        approve or reject corrections
``registry:{code}:merge``          merge duplicates and undo merges
``registry:{code}:audit``          list the reads of a record
``registry:audit``                 list the reads about a person in every registry (the portal)
``registry:self``                  a person lists the reads about themself (token ``sub`` = identifier)
=================================  =================================================================
"""

from __future__ import annotations

from typing import Final

from dpi.tokens import JwtTokenVerifier, Principal, TokenVerifier, bearer_token, require_scope

__all__ = [
    "SCOPE_AUDIT_ALL",
    "SCOPE_SELF",
    "JwtTokenVerifier",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "granted_groups",
    "registry_scope",
    "require_scope",
]

SCOPE_AUDIT_ALL: Final = "registry:audit"
SCOPE_SELF: Final = "registry:self"


def registry_scope(code: str, action: str) -> str:
    """The scope for ``action`` (read, write, correct, approve, merge, audit) on registry ``code``."""
    return f"registry:{code}:{action}"


def granted_groups(principal: Principal, code: str, groups: frozenset[str]) -> frozenset[str] | None:
    """The field groups of registry ``code`` the token may read: None for whole records, else the groups
    named by ``registry:{code}:read:{group}`` scopes (possibly none)."""
    if registry_scope(code, "read") in principal.scopes:
        return None
    prefix = registry_scope(code, "read:")
    return frozenset(scope[len(prefix) :] for scope in principal.scopes if scope.startswith(prefix)) & groups
