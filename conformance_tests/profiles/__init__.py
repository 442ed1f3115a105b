"""Built-in conformance profiles; each module defines and registers one :class:`conformance_tests.Profile`."""
