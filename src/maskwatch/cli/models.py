"""List, locate and download the model files maskwatch uses.

Files are looked up in the package, in $MASKWATCH_MODELS, and in the cache
($MASKWATCH_HOME/models, default ~/.cache/maskwatch/models); `fetch` downloads into the cache.
"""

from __future__ import annotations

import argparse

HELP = "list, locate or download model files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "path", "fetch"], help="what to do")
    p.add_argument("names", nargs="*", help="model names (default for list/fetch: all)")


def run(args: argparse.Namespace) -> int:
    from .. import registry

    names = args.names or list(registry.MODELS)
    for name in names:
        registry.model_info(name)  # an unknown name: UnknownNameError, one line and exit code 2 from the CLI
    if args.action == "list":
        rows = [("name", "file", "where", "licence")]
        for name in names:
            info = registry.MODELS[name]
            found = registry.find(name)
            where = str(found) if found else f"missing ({info.how or 'maskwatch models fetch ' + name})"
            rows.append((name, info.filename, where, info.license))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:  # columns as wide as their longest entry; the free-text licence last
            print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
        return 0
    if args.action == "path":
        for name in names:
            print(registry.resolve(name, download=False))
        return 0
    for name in names:
        if registry.MODELS[name].url is None:
            continue
        print(registry.resolve(name))
    return 0
