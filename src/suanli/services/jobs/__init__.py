"""Jobs context: the job lifecycle, the agents' pull protocol, the platform's background loop."""
