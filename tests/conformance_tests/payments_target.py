"""A payment provider to run the ``payments-provider`` profile against: our G2P Connect disburse server in
front of the provider the payments tests use, its dispatcher running, and the suite registered as the
social protection agency's sender with its callback on a local port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from conformance_tests.payments_provider import PaymentsOptions
from payments_adapter.contract import PaymentProvider
from tests.payments_adapter.g2p_harness import PAYER_FA, SENDER_ID, SYSTEM_ID, G2pTarget, g2p_target
from tests.payments_adapter.memory_provider import provider_for_tests

__all__ = ["PaymentsTarget", "payments_target"]


@dataclass
class PaymentsTarget:
    target: G2pTarget
    options: PaymentsOptions

    @property
    def app(self) -> Any:
        return self.target.app


async def payments_target(
    var_dir: Path, *, callback_port: int, provider: PaymentProvider | None = None, **overrides: Any
) -> PaymentsTarget:
    """Our server (dispatching every 50 ms), the suite registered to hear callbacks on ``callback_port``."""
    target = await g2p_target(
        var_dir,
        provider or provider_for_tests(),
        callback_url=f"http://127.0.0.1:{callback_port}/spa",
        background=timedelta(milliseconds=50),
        **overrides,
    )
    options = PaymentsOptions(
        sender_id=SENDER_ID,
        key=target.key,
        receiver_id=SYSTEM_ID,
        payer_fa=PAYER_FA,
        payee_fa="0700123456@wallet1",
        currency="XOF",
        amount="100.00",
        callback_port=callback_port,
    )
    return PaymentsTarget(target, options)
