"""Metering context: usage records reported by agents."""
