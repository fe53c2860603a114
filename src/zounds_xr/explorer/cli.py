"""The explorer's subcommands of ``zounds-xr``: ``serve`` and ``index``.

``zounds_xr.cli`` registers them with :func:`add_subcommands`.
"""
from __future__ import annotations

import sys

from .neighbours import build_index, index_url
from .server import open_explorer, serve

__all__ = ["add_subcommands"]


def _cmd_serve(args) -> int:
    serve(args.store, host=args.host, port=args.port)
    return 0


def _cmd_index(args) -> int:
    explorer = open_explorer(args.store)

    def progress(done, total):
        if not args.quiet:
            print(f"\rreading {args.feature}: {done}/{total} frames", end="", file=sys.stderr)

    index = build_index(explorer.store, args.feature, window=args.window, hop=args.hop,
                        bits=args.bits, seed=args.seed, progress=progress)
    url = index_url(args.store, args.feature)
    index.save(url)
    if not args.quiet:
        print(file=sys.stderr)
    a = index.attrs
    print(f"indexed {a['windows']} windows ({a['window_seconds']:.3f} s, hop "
          f"{a['hop_seconds']:.3f} s) of {a['documents']} documents, {a['bits']} bits, in "
          f"{a['built_seconds']:.1f} s: {url}")
    return 0


def add_subcommands(sub) -> None:
    """Add ``serve`` and ``index`` to the ``zounds-xr`` subparsers ``sub``."""
    p = sub.add_parser("serve", help="browse, hear and search a store in the web browser")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.set_defaults(run=_cmd_serve)

    p = sub.add_parser("index", help="build the explorer's neighbour index of a feature")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--feature", required=True, help="a stored feature with a time axis")
    p.add_argument("--window", type=float, default=None,
                   help="window length in seconds (default 0.5)")
    p.add_argument("--hop", type=float, default=None,
                   help="step between windows in seconds (default half the window)")
    p.add_argument("--bits", type=int, default=256, help="bits per SimHash code")
    p.add_argument("--seed", type=int, default=0, help="seed of the hyperplanes")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(run=_cmd_index)
