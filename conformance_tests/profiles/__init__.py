"""Built-in conformance profiles; each module defines one :class:`~conformance_tests.model.Profile` and registers it."""
