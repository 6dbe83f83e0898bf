"""Discrete-event simulator: real GPU traces through the placement engine on a simulated clock."""
