"""``python -m dpi`` is the ``dpi`` command."""

from dpi.cli import main

main()
