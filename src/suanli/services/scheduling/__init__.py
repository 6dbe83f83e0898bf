"""Scheduling context: placement of pending jobs, ranking, leases."""
