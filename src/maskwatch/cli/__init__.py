"""``maskwatch`` command line: a thin layer over the library. Subcommands are verbs.

Each subcommand lives in its own module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, FastAPI, ...) happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import MaskwatchError

#: subcommand -> module (relative to this package)
COMMANDS = {
    "detect": ".detect",
    "classify": ".classify",
    "models": ".models",
    "train": ".train",
    "eval-classifier": ".eval_classifier",
    "export": ".export",
    "eval": ".eval",
    "train-detector": ".train_detector",
    "watch": ".watch",
    "serve": ".serve",
    "app": ".app",
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Adds ``(default: X)`` to a flag's help once: not where the help already states its default,
    and not for defaults that say nothing (``None``, ``False`` of an on/off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="maskwatch", description="Face-mask detection for photos, video and the web.",
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"maskwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name, __name__)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__, formatter_class=_Formatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def error(message: str) -> None:
    """One line on stderr; the only way the CLI reports a problem with one input (keeps any
    progress bar intact)."""
    from tqdm import tqdm

    tqdm.write(f"maskwatch: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="maskwatch: %(levelname)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except (MaskwatchError, FileNotFoundError, ValueError, ImportError) as exc:
        error(str(exc))
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
