"""The payments vocabulary: every mapped code is a reason code, and every code the block uses is defined."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import payments_adapter
from standards._vocabulary import payment_reasons, reason_codes


def test_every_mapped_payment_reason_is_a_reason_code_with_three_languages() -> None:
    codes = reason_codes()
    for code in payment_reasons():
        assert code in codes
        assert set(codes[code].messages) >= {"en", "fr", "ar"}


def test_every_reason_code_the_block_uses_exists() -> None:
    used: set[str] = set()
    for source in Path(payments_adapter.__file__).parent.rglob("*.py"):
        used |= set(re.findall(r'"(payments\.[a-z_]+\.[a-z_]+)"', source.read_text(encoding="utf-8")))
    used.discard("payments.item.state")  # the outbox topic, not a reason code
    assert used - set(reason_codes()) == set()


_PACKAGE = Path(payments_adapter.__file__).parent
_MODULES = sorted(str(path.relative_to(_PACKAGE)) for path in _PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", _MODULES)
def test_no_float_anywhere_in_the_block(module: str) -> None:
    tree = ast.parse((_PACKAGE / module).read_text(encoding="utf-8"))
    floats = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Constant) and isinstance(node.value, float))
        or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float")
        or (isinstance(node, ast.Name) and node.id == "float" and isinstance(node.ctx, ast.Load))
    ]
    assert floats == [], f"{module} lines {floats}"
