"""`weir config …`: view and change settings in the active profile (`~/.weir/profiles.toml`)."""

from __future__ import annotations

import typer

from weir.cli.output import exit_with_error, print_json

app = typer.Typer(help="View and change settings in your profiles.", no_args_is_help=True)


def _mask(key: str, value: object) -> object:
    from weir.settings import is_secret

    return "********" if is_secret(key) and value else value


@app.command("view")
def view(
    show_secrets: bool = typer.Option(False, "--show-secrets", help="Print secret values."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show the active profile and every setting that differs from its default, with its source."""
    import os

    from dotenv import dotenv_values

    from weir.profiles import load_profiles
    from weir.settings import get_settings, resolve_home, setting_env_names

    settings = get_settings()
    home = resolve_home()
    dotenv = {k.upper() for k in dotenv_values(".env")}
    profiles = load_profiles(home)
    active = settings.profile or profiles.active
    profile_values = {k.upper(): v for k, v in profiles.profiles.get(active, {}).items()}
    rows = {}
    for env_name, path in sorted(setting_env_names().items()):
        value: object = settings
        for part in path:
            value = getattr(value, part)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if env_name in os.environ:
            source = "env"
        elif env_name in dotenv:
            source = ".env"
        elif env_name in profile_values:
            source = f"profile {active}"
        else:
            continue
        rows[env_name] = {
            "value": value if show_secrets else _mask(env_name, value),
            "source": source,
        }
    if json_output:
        print_json({"profile": active, "home": str(home), "settings": rows})
        return
    typer.echo(f"PROFILE: {active}   (WEIR_HOME={home})")
    if not rows:
        typer.echo("All settings have their defaults.")
    for name, row in rows.items():
        typer.echo(f"{name}={row['value']}   ({row['source']})")


@app.command("set")
def set_values(
    assignments: list[str] = typer.Argument(
        ..., help="One or more KEY=VALUE, e.g. WEIR_API_URL=http://127.0.0.1:4200/api"
    ),
    profile: str = typer.Option(
        None, "--profile", help="Profile to change (default: the active one)."
    ),
) -> None:
    """Set settings in a profile."""
    from weir.profiles import load_profiles, set_profile_value
    from weir.settings import resolve_home

    home = resolve_home()
    name = profile or load_profiles(home).active
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            exit_with_error(
                f"{assignment!r} is not KEY=VALUE; write e.g. WEIR_API_URL=http://127.0.0.1:4200/api."
            )
        set_profile_value(name, key.strip().upper(), value, home=home)
        typer.echo(f"Set {key.strip().upper()} in profile {name!r}.")


@app.command("unset")
def unset_values(
    keys: list[str] = typer.Argument(..., help="Settings to remove, e.g. WEIR_API_URL"),
    profile: str = typer.Option(
        None, "--profile", help="Profile to change (default: the active one)."
    ),
) -> None:
    """Remove settings from a profile (they fall back to the environment or defaults)."""
    from weir.profiles import load_profiles, unset_profile_value
    from weir.settings import resolve_home

    home = resolve_home()
    name = profile or load_profiles(home).active
    for key in keys:
        if unset_profile_value(name, key.strip().upper(), home=home):
            typer.echo(f"Unset {key.strip().upper()} in profile {name!r}.")
        else:
            exit_with_error(
                f"{key.strip().upper()} is not set in profile {name!r}; nothing to unset."
            )
