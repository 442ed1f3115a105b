"""Mojaloop FSPIOP API 1.1 (https://github.com/mojaloop/mojaloop-specification): the payment provider that
pays through a Mojaloop hub, the routes its callbacks arrive at, the FSPIOP error codes as data, and a
simulated hub with payee DFSPs to test against."""

from payments_adapter.mojaloop.adapter import Callback, MojaloopProvider, MojaloopSettings, create_provider
from payments_adapter.mojaloop.callbacks import routes
from payments_adapter.mojaloop.errors import FSPIOP_ERROR_CODES, Disposition, FspiopErrorCode, fspiop_error

__all__ = [
    "FSPIOP_ERROR_CODES",
    "Callback",
    "Disposition",
    "FspiopErrorCode",
    "MojaloopProvider",
    "MojaloopSettings",
    "create_provider",
    "fspiop_error",
    "routes",
]
