"""Consent block: agreements, consent records with their full lifecycle, signed receipts, the check
API the exchange calls, and notifications to data users (ISO/IEC TS 27560, W3C DPV, Kantara CR 1.1)."""
