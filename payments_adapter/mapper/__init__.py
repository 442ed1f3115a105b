"""The ID-to-account mapper of the payments block: G2P Connect-compatible link, update, unlink and
resolve (``api/g2p-mapper.yaml``, https://github.com/G2P-Connect/specs) with the person's choice, their
consent receipt on every link, one address per beneficiary unless a shared address is allowed, the full
history, and changes frozen from a payment cycle's cut-off. See :mod:`.service` for the rules."""

from payments_adapter.mapper.service import MapperService

__all__ = ["MapperService"]
