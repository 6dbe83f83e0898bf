"""Federation context: the platform tree, its peers and keys, catalog aggregation and sync."""
