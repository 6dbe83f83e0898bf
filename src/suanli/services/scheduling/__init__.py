"""Scheduling context: placement of pending jobs on pools by the placement engine."""
