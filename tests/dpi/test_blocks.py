"""Blocks are found through the dpi.blocks entry-point group, so third parties can add their own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpi.blocks import Block, BlockError, demo_order, discover_blocks, select_blocks


def _install_distribution(root: Path, name: str, entry_points: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(source)
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[dpi.blocks]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for module in [name for name in sys.modules if name.startswith("land_registry")]:
        del sys.modules[module]


_LAND_REGISTRY = """
from dpi.blocks import Block, ProfileClaim
block = Block(name="land-registry", prefix="/land", version="2.0.0",
              profiles=(ProfileClaim("registry-dci", "1.0.0"),))
def make_block():
    return block
"""


def test_third_party_block_is_discovered(site: Path) -> None:
    _install_distribution(
        site,
        "land-registry",
        "land-registry = land_registry_block:block",
        "land_registry_block",
        _LAND_REGISTRY,
    )
    names = [block.name for block in discover_blocks()]
    assert "land-registry" in names


def test_entry_point_may_name_a_factory(site: Path) -> None:
    _install_distribution(
        site,
        "land-registry",
        "land-registry = land_registry_factory:make_block",
        "land_registry_factory",
        _LAND_REGISTRY,
    )
    found = {block.name: block for block in discover_blocks()}
    assert found["land-registry"].profiles[0].name == "registry-dci"


@pytest.mark.parametrize(
    ("entry", "source", "fragment"),
    [
        ("broken = land_registry_broken:block", "raise ImportError('no')\n", "cannot be loaded"),
        ("broken = land_registry_wrong:block", "block = 42\n", "is not a dpi.blocks.Block"),
        ("broken = land_registry_missing:nothing", "x = 1\n", "cannot be loaded"),
    ],
)
def test_bad_entry_points_are_named(site: Path, entry: str, source: str, fragment: str) -> None:
    module = entry.split("= ")[1].split(":")[0]
    _install_distribution(site, "broken", entry, module, source)
    with pytest.raises(BlockError, match=fragment):
        discover_blocks()


def test_two_blocks_cannot_share_a_prefix(site: Path) -> None:
    source = (
        "from dpi.blocks import Block\n"
        "a = Block(name='first', prefix='/same', version='1')\n"
        "b = Block(name='second', prefix='/same', version='1')\n"
    )
    _install_distribution(
        site,
        "clash",
        "first = land_registry_clash:a\nsecond = land_registry_clash:b",
        "land_registry_clash",
        source,
    )
    with pytest.raises(BlockError, match="both claim prefix /same"):
        discover_blocks()


@pytest.mark.parametrize(
    ("name", "prefix", "fragment"),
    [
        ("Bad Name", "/x", "block name"),
        ("ok", "x", "must start with '/'"),
        ("ok", "/x/", "must start with '/'"),
    ],
)
def test_block_declaration_is_checked(name: str, prefix: str, fragment: str) -> None:
    with pytest.raises(BlockError, match=fragment):
        Block(name=name, prefix=prefix, version="1")


def test_select_refuses_unknown_blocks() -> None:
    available = [Block(name="identity", prefix="/identity", version="1")]
    assert select_blocks(available, None) == available
    assert select_blocks(available, ["identity", "identity"]) == available
    with pytest.raises(BlockError, match="unknown block\\(s\\) payments; installed: identity"):
        select_blocks(available, ["identity", "payments"])


def test_demo_chapters_load_after_the_chapters_they_build_on() -> None:
    payments = Block(name="payments", prefix="/payments", version="1", demo_after=("registry", "consent"))
    consent = Block(name="consent", prefix="/consent", version="1")
    registry = Block(name="registry", prefix="/registry", version="1", demo_after=("absent",))
    assert [block.name for block in demo_order([consent, payments, registry])] == [
        "consent",
        "registry",
        "payments",
    ]
    assert [block.name for block in demo_order([payments])] == ["payments"]


def test_demo_chapters_that_wait_for_each_other_are_refused() -> None:
    first = Block(name="first", prefix="/first", version="1", demo_after=("second",))
    second = Block(name="second", prefix="/second", version="1", demo_after=("first",))
    with pytest.raises(BlockError, match="wait for each other"):
        demo_order([first, second])
