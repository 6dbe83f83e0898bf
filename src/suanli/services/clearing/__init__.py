"""Clearing context: daily clearing between platforms, statements, reconciliation."""
