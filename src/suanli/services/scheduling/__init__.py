"""Scheduling context: placement of pending jobs on pools, and their ranking."""
