"""Repositories: each context's rows in and out of the database as domain objects."""
