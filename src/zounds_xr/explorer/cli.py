"""The explorer's subcommands of ``zounds-xr``: serve, index, map and pyramid.

``zounds_xr.app.cli`` registers them with :func:`add_subcommands`.
"""
from __future__ import annotations

import sys
import time

from ..documents.pyramid import MIN_BYTES, build_pyramids
from ..search import open_index
from .maplayout import METHODS, build_map, map_path
from .server import open_explorer, serve

__all__ = ["add_subcommands"]


def _cmd_serve(args) -> int:
    serve(args.store, host=args.host, port=args.port, writable=args.writable)
    return 0


class _Progress:
    """Show a command's progress on one line of stderr, rewritten in place.

    Called as ``(done, total)`` or ``(stage, done, total)``; silent with ``--quiet``;
    ``end()`` ends the line.
    """

    def __init__(self, args, what: str = ""):
        self.quiet, self.what = args.quiet, what

    def __call__(self, *state) -> None:
        if not self.quiet:
            stage = f"{state[0]}: " if len(state) == 3 else ""
            print(f"\r{self.what}{stage}{state[-2]}/{state[-1]}   ", end="", file=sys.stderr)

    def end(self) -> None:
        if not self.quiet:
            print(file=sys.stderr)


def _cmd_index(args) -> int:
    explorer = open_explorer(args.store)
    started = time.perf_counter()
    progress = _Progress(args, f"{args.feature} frames, ")
    index = open_index(explorer.store, args.feature, window=args.window, hop=args.hop,
                       bits=args.bits, seed=args.seed, progress=progress)
    progress.end()
    c = index.config
    print(f"indexed {len(index)} windows ({c.rule.window * c.step:.3f} s, hop "
          f"{c.rule.hop * c.step:.3f} s) of {len(index.index.segments)} documents, "
          f"{index.index.bits} bits: {len(index.hashed_parts)} parts hashed, "
          f"{len(index.loaded_parts)} read, in {time.perf_counter() - started:.1f} s: "
          f"{args.store.rstrip('/')}/{c.prefix}")
    return 0


def _cmd_pyramid(args) -> int:
    explorer = open_explorer(args.store)
    progress = _Progress(args, "summarising frames: ")
    built = build_pyramids(explorer.store, args.feature or None,
                           min_bytes=int(args.min_mb * 2 ** 20), progress=progress)
    progress.end()
    print(f"{len(built)} pyramids current (documents with at least {args.min_mb:g} MB of "
          f"frames of {', '.join(args.feature) if args.feature else 'any feature'})")
    return 0


def _cmd_map(args) -> int:
    explorer = open_explorer(args.store)
    progress = _Progress(args)
    layout = build_map(explorer.store, args.feature, args.method, seed=args.seed,
                       sample=args.sample, progress=progress)
    progress.end()
    a = layout.attrs
    print(f"{a['method']} map of {a['documents']} documents ({a['dims']} summary dims) in "
          f"{a['built_seconds']:.1f} s: {args.store.rstrip('/')}/"
          f"{map_path(args.feature, args.method)}")
    return 0


def add_subcommands(sub) -> None:
    """Add ``serve``, ``index``, ``map`` and ``pyramid`` to the ``zounds-xr`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers()`` returned for ``zounds-xr``.
    """
    p = sub.add_parser("serve", help="browse, hear and search a store in the web browser")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--writable", action="store_true",
                   help="allow label edits from the page (read-only otherwise)")
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

    p = sub.add_parser("map", help="lay the documents out on the explorer's 2-D map")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--feature", required=True,
                   help="a stored feature (a spectrogram, a fingerprint, an embedding)")
    p.add_argument("--method", choices=METHODS, default="umap",
                   help="umap (neighbour-preserving, default) or pca (fast)")
    p.add_argument("--sample", type=int, default=100_000,
                   help="UMAP is fitted on this many documents at most; the others are "
                        "placed by their nearest sampled neighbours")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(run=_cmd_map)

    p = sub.add_parser("pyramid", help="summarise long documents for the explorer's zoom")
    p.add_argument("store", help="Zarr store path or URL")
    p.add_argument("--feature", action="append", default=[],
                   help="a stored feature (repeat; default: every feature)")
    p.add_argument("--min-mb", type=float, default=MIN_BYTES / 2 ** 20,
                   help=f"only documents whose frames of a feature hold at least this many "
                        f"MiB as float32 (default {MIN_BYTES / 2 ** 20:g})")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.set_defaults(run=_cmd_pyramid)
