"""The identity block: the person register (UINs, virtual IDs, sector pseudonyms) and authentication.

The block's own modules follow the standard file set: :mod:`identity.service` (the person register),
:mod:`identity.pseudonyms`, :mod:`identity.api`, :mod:`identity.block`, :mod:`identity.models`.
"""

__all__: list[str] = []
