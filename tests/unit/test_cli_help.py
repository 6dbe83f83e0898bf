"""Every command, argument and option of `suanli` says what it is for (`--help` reads well)."""

from __future__ import annotations

import typer.main

from suanli.cli.main import app


def _walk(command, path: str):  # type: ignore[no-untyped-def]
    yield path, command
    if hasattr(command, "commands"):  # a group (Typer ships its own click)
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


def test_every_command_argument_and_option_has_help() -> None:
    missing = []
    for path, command in _walk(typer.main.get_command(app), "suanli"):
        if not (command.help or command.short_help):
            missing.append(f"{path}: the command")
        for param in command.params:
            if param.name in ("help", "install_completion", "show_completion"):
                continue
            if not getattr(param, "help", None):
                missing.append(f"{path}: {param.name}")
    assert not missing, "no help text:\n" + "\n".join(missing)


def test_the_top_help_starts_a_newcomer_on_the_readme_path() -> None:
    root = typer.main.get_command(app)
    assert "suanli serve --demo" in (root.help or "")
    assert {"serve", "login", "logout", "whoami", "accelerators", "jobs", "pools", "bills"} <= \
        set(root.commands)
