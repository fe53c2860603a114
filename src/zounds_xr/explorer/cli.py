"""The explorer's subcommands of ``zounds-xr``: ``serve`` and ``index``.

``zounds_xr.cli`` registers them with :func:`add_subcommands`.
"""
from __future__ import annotations

import sys
import time

from ..search import open_index
from .server import open_explorer, serve

__all__ = ["add_subcommands"]


def _cmd_serve(args) -> int:
    serve(args.store, host=args.host, port=args.port)
    return 0


def _cmd_index(args) -> int:
    explorer = open_explorer(args.store)
    started = time.perf_counter()

    def progress(what, done, total):
        if not args.quiet:
            print(f"\r{what} {args.feature}: {done}/{total} frames", end="",
                  file=sys.stderr)

    index = open_index(explorer.store, args.feature, window=args.window, hop=args.hop,
                       bits=args.bits, seed=args.seed, progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    c = index.config
    print(f"indexed {len(index)} windows ({c.rule.window * c.step:.3f} s, hop "
          f"{c.rule.hop * c.step:.3f} s) of {len(index.index.segments)} documents, "
          f"{index.index.bits} bits: {len(index.hashed_parts)} parts hashed, "
          f"{len(index.loaded_parts)} read, in {time.perf_counter() - started:.1f} s: "
          f"{args.store.rstrip('/')}/{c.prefix}")
    return 0


def add_subcommands(sub) -> None:
    """Add ``serve`` and ``index`` to the ``zounds-xr`` subparsers ``sub``."""
    p = sub.add_parser("serve", help="browse, hear and search a store in the web browser")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.set_defaults(run=_cmd_serve)

    p = sub.add_parser("index", help="build (or bring up to date) the search index of a "
                                     "feature, kept in the store")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--feature", required=True, help="a stored feature with a time axis")
    p.add_argument("--window", type=float, default=None,
                   help="window length in seconds (default: `bits` bits of fingerprint "
                        "frames, or 0.5 s of other features)")
    p.add_argument("--hop", type=float, default=None,
                   help="step between windows in seconds (default: one fingerprint "
                        "frame, or half the window)")
    p.add_argument("--bits", type=int, default=256, help="bits per window code")
    p.add_argument("--seed", type=int, default=0, help="seed of the SimHash hyperplanes")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(run=_cmd_index)
