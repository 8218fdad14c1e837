"""The ``flowscope`` command: ``demo``, ``sandbox``, ``check`` and ``launch``.

Each command lives in its own module. ``rich`` (the ``cli`` extra) is imported only when output
goes to a terminal, and is optional: without it the output is plain text. The library never
imports this package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._common import CliError
from ._inputs import coerce, input_pair

__all__ = ["coerce", "input_pair", "main"]


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from flowscope import __version__
    from flowscope.sandbox import add_arguments as add_sandbox_arguments

    from . import _check, _demo, _launch

    parser = _Parser(
        prog="flowscope",
        description="See what your Genesys Cloud flow-execution calls are doing.",
    )
    parser.add_argument("--version", action="version", version=f"flowscope {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _demo.add_parser(commands)
    sandbox = commands.add_parser("sandbox", help="run the sandbox flow API alone")
    add_sandbox_arguments(sandbox).set_defaults(run=_sandbox)
    _check.add_parser(commands)
    _launch.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failure found, 2 usage error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _parser()
        args = parser.parse_args(args_list)
        run = getattr(args, "run", None)
        if run is None:
            parser.print_help(sys.stderr)
            return 2
        return int(run(args))
    except CliError as exc:
        sys.stderr.write(f"flowscope: error: {exc}\n")
        return exc.exit_code
    except SystemExit as exc:
        # argparse exits for --help and usage errors; a caller of main() gets the status.
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        sys.stderr.write("flowscope: interrupted\n")
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not worth a traceback.
        return 1


def _sandbox(args: argparse.Namespace) -> int:
    from flowscope.sandbox import serve

    try:
        return serve(args)
    except OSError as exc:
        # The port in use, or an address that is not this machine's: say which of the two.
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise CliError(f"cannot listen on {args.host}:{args.port}: {reason}", 1) from None
