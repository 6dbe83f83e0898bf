"""Jobs context: the job lifecycle (submit, read, cancel, logs, transitions) and the leases
that hold devices for jobs."""
