"""The STL training wing: one config, one stage builder, one per-token mix record."""
