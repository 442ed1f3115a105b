"""The dpi-blocks kernel: settings, storage, keys, signing, telemetry, app assembly and the ``dpi`` CLI."""
