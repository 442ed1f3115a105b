"""The registry of conformance profiles: profile name -> :class:`~conformance_tests.model.Profile`.

Built-in profiles live in ``conformance_tests.profiles``; a block adds its own with :func:`register_profile`.
"""

from __future__ import annotations

import importlib

from conformance_tests.model import Profile

__all__ = ["UnknownProfile", "find_profile", "known_profiles", "register_profile"]

_BUILT_IN_MODULES = (
    "conformance_tests.profiles.platform",
    "conformance_tests.profiles.consent",
    "conformance_tests.profiles.identity_oidc",
    "conformance_tests.profiles.registry_dci",
    "conformance_tests.payments_provider.profile",
)
_PROFILES: dict[str, Profile] = {}


class UnknownProfile(KeyError):
    """No profile is registered under the requested name; ``known`` lists the registered ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown profile {self.name!r}; known profiles: {', '.join(self.known) or 'none'}"


def register_profile(new: Profile) -> Profile:
    """Add ``new`` to the registry; a name can be registered only once."""
    existing = _PROFILES.get(new.name)
    if existing is not None and existing is not new:
        raise ValueError(f"a profile named {new.name!r} is already registered")
    _PROFILES[new.name] = new
    return new


def known_profiles() -> dict[str, Profile]:
    """Every registered profile by name (built-in ones included), in registration order."""
    for module in _BUILT_IN_MODULES:
        importlib.import_module(module)
    return dict(_PROFILES)


def find_profile(name: str) -> Profile:
    """The profile registered as ``name``; raises :class:`UnknownProfile` listing the known names."""
    known = known_profiles()
    if name not in known:
        raise UnknownProfile(name, sorted(known))
    return known[name]
