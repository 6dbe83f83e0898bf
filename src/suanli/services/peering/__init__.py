"""Peering context: the node's running exchanges with its parent and peers: catalog sync,
forwarding, clearing delivery, reconciliation."""
