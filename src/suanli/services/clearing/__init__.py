"""Clearing context: daily clearing between platforms, netting and statements."""
