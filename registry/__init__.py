"""The registry block: schema-defined registries with history, corrections, merges and read audit."""
