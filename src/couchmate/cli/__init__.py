"""The `couchmate` command: parse, build, render. Each capability adds its own commands."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from couchmate.errors import CouchmateError

app = typer.Typer(
    name="couchmate",
    help="couchmate: the friend on the couch. Watches your game, talks with you, remembers you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _print_version(asked: bool) -> None:
    if asked:
        from couchmate import __version__

        typer.echo(f"couchmate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    # Each module adds its commands to `app`; their heavy imports happen inside commands.
    from couchmate.cli import bench, config_cmd, memory_cmd, mind_cmd, play_cmd, watch_cmd

    for mod in (play_cmd, watch_cmd, mind_cmd, memory_cmd, bench, config_cmd):
        mod.register(app)


_register()


def command() -> Any:
    """The command behind `app`, with help that shows no `<bool>` beside a flag (a flag takes
    no value, so naming a type there reads as if it wanted one). Typed loosely: typer brings
    its own click, and plain click need not be installed."""
    cmd = typer.main.get_command(app)
    _drop_flag_metavars(cmd)
    return cmd


def _drop_flag_metavars(cmd: Any) -> None:
    for param in cmd.params:
        if getattr(param, "is_flag", False):  # typer's options are not click.Options
            param.metavar = ""
    make_help = cmd.get_help_option  # --help is made per context, when help is asked for

    def help_option(ctx: Any) -> Any:
        opt = make_help(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    cmd.get_help_option = help_option
    for sub in getattr(cmd, "commands", {}).values():
        _drop_flag_metavars(sub)


def main() -> None:
    from couchmate.cli.common import err_console

    debug = "--debug" in sys.argv
    try:
        # Standalone mode: typer/click print usage errors themselves and exit.
        command()(prog_name="couchmate")
    except CouchmateError as e:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/bold red] {e.message}", highlight=False)
        if e.hint:
            err_console.print(f"[yellow]hint:[/yellow] {e.hint}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[dim]stopped[/dim]")
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        err_console.print(f"[bold red]internal error:[/bold red] {type(e).__name__}: {e}")
        err_console.print("[yellow]hint:[/yellow] run again with --debug for the traceback")
        sys.exit(1)
