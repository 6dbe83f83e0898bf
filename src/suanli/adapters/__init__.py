"""Adapters to the outside world: the store, engines, peers, clock, meters."""
