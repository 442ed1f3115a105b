"""The public names of the suite are deliberate: ``__all__`` lists exactly what the package exports."""

from __future__ import annotations

from types import ModuleType

import pytest

import conformance_tests
from conformance_tests import Finding, Profile, Status, known_profiles, register_profile


def test_all_lists_every_public_name_sorted() -> None:
    public = {
        name
        for name, value in vars(conformance_tests).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(conformance_tests.__all__) == public
    assert conformance_tests.__all__ == sorted(conformance_tests.__all__)


def test_every_test_cites_catalogued_requirements_of_its_profile() -> None:
    import standards

    catalogue = {r.id: r for r in standards.requirements()}
    for name, profile in known_profiles().items():
        for conformance_test in profile.tests:
            assert conformance_test.requirements, conformance_test.name
            for requirement in conformance_test.requirements:
                assert catalogue[requirement].profile == name


def test_a_profile_refuses_two_tests_with_one_name() -> None:
    profile = Profile(name="example", version="1.0.0")

    async def check(_session: object) -> list[Finding]:
        return [Finding("PLT-001", Status.PASS, "ok")]

    profile.test("same", ["PLT-001"])(check)
    with pytest.raises(ValueError, match="already has a test named 'same'"):
        profile.test("same", ["PLT-001"])(check)


def test_a_profile_name_is_registered_once() -> None:
    platform = known_profiles()["platform"]
    assert register_profile(platform) is platform
    with pytest.raises(ValueError, match="already registered"):
        register_profile(Profile(name="platform", version="9.9.9"))
