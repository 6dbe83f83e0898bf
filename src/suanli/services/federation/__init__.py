"""Federation context: the platform tree, catalog aggregation, the runtime loop, sync."""
