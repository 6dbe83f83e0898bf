"""Billing context: wallets and holds, charging, tariffs, vouchers, statements."""
