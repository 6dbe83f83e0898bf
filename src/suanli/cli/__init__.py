"""The `suanli` command line (Typer + Rich)."""
