"""Use cases: each function is one transaction over the store."""
