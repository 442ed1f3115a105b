"""The registry block's chapter of the demo story (DESIGN section 8): the Ministry of Interior's civil
registry with Amina and Youssef among synthetic persons, the Ministry of Labour's job-seeker registry, and
the licensing office's registry of recruitment agencies.

Loading is idempotent: a registry that already holds records is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import func, select

from registry.models import RecordRow
from registry.service import RegistryService
from registry.synthetic import generate, uin

__all__ = ["AMINA", "DEMO_COUNTS", "YOUSSEF", "load"]

DEMO_ACTOR: Final = "demo-loader"
DEMO_COUNTS: Final = {"civil": 200, "jobseekers": 100, "recruitment-agencies": 30}

AMINA: Final[dict[str, Any]] = {
    "record_type": "person",
    "uin": uin(424_242_424),
    "names": [
        {"given": "Amina", "family": "Diallo", "script": "Latn"},
        {"given": "أمينة", "family": "ديالو", "script": "Arab"},
    ],
    "sex": "female",
    "date_of_birth": "2001-03-14",
    "place_of_birth": {"locality": "Capital town 3", "region": "Capital", "country": "SN"},
    "marital_status": "single",
    "vital_status": "alive",
}
YOUSSEF: Final[dict[str, Any]] = {
    "record_type": "person",
    "uin": uin(585_858_585),
    "names": [
        {"given": "Youssef", "family": "Haddad", "script": "Latn"},
        {"given": "يوسف", "family": "حداد", "script": "Arab"},
    ],
    "sex": "male",
    "date_of_birth": "1967-09-02",
    "place_of_birth": {"locality": "Valley town 12", "region": "Valley", "country": "SN"},
    "marital_status": "married",
    "vital_status": "alive",
}


async def _holds_records(service: RegistryService, code: str) -> bool:
    async with service.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(RecordRow).where(RecordRow.registry_code == code)
        )
    return bool(count)


async def load(service: RegistryService) -> Sequence[str]:
    """Load the demo registries (once) and say what they hold."""
    lines: list[str] = []
    for code, count in DEMO_COUNTS.items():
        if code not in service.definitions:
            continue
        if not await _holds_records(service, code):
            documents = list(generate(code, count, seed=2026))
            if code == "civil":
                documents += [AMINA, YOUSSEF]
            await service.create_many(code, documents, actor=DEMO_ACTOR, reason="demo data")
        lines.append(f"registry {code}: synthetic records at /registry/{code}/v1/records")
    return lines
