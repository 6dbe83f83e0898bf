"""Roaming context: jobs forwarded between platforms and the money that follows them."""
