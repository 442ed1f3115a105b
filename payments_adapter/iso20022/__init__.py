"""ISO 20022 bank files for the payments block: pain.001 written, pain.002 and camt.054 read.

https://www.iso20022.org/iso-20022-message-definitions. Every file is checked against the official
XSD of its message (``xsd/``, with their source in ``xsd/README.md``); ISO 20022 status and reason
codes are mapped to the payments vocabulary by the ISO 20022 tables of the ``payment-reasons``
vocabulary of :mod:`standards`.
"""

from payments_adapter.iso20022.adapter import IngestReport, Iso20022Provider, create_provider
from payments_adapter.iso20022.camt054 import CAMT054, Notification, read_camt054
from payments_adapter.iso20022.documents import MESSAGES, Iso20022FileError, read_document
from payments_adapter.iso20022.pain001 import PAIN001, CreditTransferRun, Debtor, read_pain001, write_pain001
from payments_adapter.iso20022.pain002 import PAIN002_VERSIONS, StatusReport, read_pain002

__all__ = [
    "CAMT054",
    "MESSAGES",
    "PAIN001",
    "PAIN002_VERSIONS",
    "CreditTransferRun",
    "Debtor",
    "IngestReport",
    "Iso20022FileError",
    "Iso20022Provider",
    "Notification",
    "StatusReport",
    "create_provider",
    "read_camt054",
    "read_document",
    "read_pain001",
    "read_pain002",
    "write_pain001",
]
