"""Dispatch context: the agents' pull protocol (claim, heartbeat, report) and the
platform's background loop."""
