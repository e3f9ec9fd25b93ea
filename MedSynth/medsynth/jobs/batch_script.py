"""What every module's batch script shares: argument errors, progress lines, exit codes.

The scripts run with plain Python and with ``Slicer --no-main-window --python-script``; both
print ``PROGRESS <percent>% <message>`` lines and exit 0 (done), 2 (bad input), 3 (the
computation failed) or 130 (interrupted: finished outputs are kept, the same command resumes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from medsynth.errors import CancelledError, InputError, MedSynthError

EXIT_OK, EXIT_CRASH, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def batch_command(module_file: str) -> str:
    """The command that runs a module's batch script where Slicer installs it.

    CMake lists it as ``Batch/<Module>Batch.py`` beside ``<Module>.py``, so the installed module
    file's folder locates it (the source tree has the same layout).
    """
    module = Path(module_file).resolve()
    script = module.parent / "Batch" / f"{module.stem}Batch.py"
    return f'Slicer --no-main-window --python-script "{script}" --help'


class ArgumentError(Exception):
    """Bad command-line arguments (exit code 2 with the parser's usage)."""


class ScriptArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises ArgumentError instead of exiting, so main() picks the exit code."""

    def error(self, message):
        raise ArgumentError(message)


class ProgressPrinter:
    """A progress callback printing ``PROGRESS <percent>% <message>`` whenever the line changes."""

    def __init__(self, quiet: bool = False, decimals: int = 0) -> None:
        self.quiet = quiet
        self.decimals = decimals
        self.last: str | None = None

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.quiet:
            return
        percent = f"{100.0 * fraction:.{self.decimals}f}" if self.decimals else str(int(100 * fraction))
        line = f"PROGRESS {percent}% {message}".rstrip()
        if line != self.last:
            print(line, flush=True)
            self.last = line


def run_script(
    name: str,
    parser: argparse.ArgumentParser,
    argv: list[str],
    work: Callable[[argparse.Namespace], int],
    resume_hint: str = "run the same command again to resume",
    check: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """Parse ``argv``, run ``work(args)`` and turn every outcome into a message and an exit code."""
    try:
        args = parser.parse_args(argv)
        if check is not None:
            check(args)
    except ArgumentError as error:
        print(f"{name}: error: {error}\n{parser.format_usage()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return work(args)
    except (ArgumentError, InputError) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (CancelledError, KeyboardInterrupt):
        print(f"{name}: interrupted; {resume_hint}.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MedSynthError as error:
        print(f"{name}: failed: {error}", file=sys.stderr)
        return EXIT_FAILED
