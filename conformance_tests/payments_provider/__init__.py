"""Profile ``payments-provider``: a payment provider's G2P Connect disburse API 0.1.0
(https://github.com/G2P-Connect/specs, ``api/g2p-disburse.yaml``), tested with the suite as a registered
disburse sender that hosts its own callback receiver (:mod:`.sender`, :mod:`.profile`)."""

from conformance_tests.payments_provider.sender import PaymentsOptions

__all__ = ["PaymentsOptions"]
