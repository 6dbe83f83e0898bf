"""Discrete-event simulator: replays real GPU traces through the placement engine on a simulated clock."""
