"""Run the ``zounds-xr`` command line.

Its commands: ``ingest``, ``info``, ``verify``, ``repair``, ``upgrade``, ``demo``,
``serve`` and ``index``.

Exit codes: 0 success, 1 some sources failed (ingest), damaged documents (verify) or
the store is unreadable, 2 usage errors (bad arguments, unknown document class),
130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import sys

from ..core.optional import optional_import
from ..documents.batch import ingest
from ..datasets import CompositeDataset, Directory
from .demo import run_demo
from ..documents.document import Document
from ..documents.settings import zarr_settings
from ..documents.store import FeatureStore
from ..core.errors import ZoundsError
from ..io.metadata import AudioMetaData
from ..explorer.cli import add_subcommands as _add_explorer_subcommands

__all__ = ["main"]


def _load_document(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(_usage(f"--document must look like module:Class, got {spec!r}"))
    sys.path.insert(0, str(pathlib.Path.cwd()))
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(_usage(f"cannot load document class {spec!r}: {exc}")) from None
    if not (isinstance(obj, type) and issubclass(obj, Document)):
        raise SystemExit(_usage(f"{spec!r} is not a zounds_xr Document subclass"))
    return obj


def _usage(message: str) -> int:
    print(f"zounds-xr: error: {message}", file=sys.stderr)
    return 2


def _dataset(sources, pattern):
    parts: list = []
    files: list[AudioMetaData] = []
    for source in sources:
        path = pathlib.Path(source)
        if path.is_dir():
            parts.append(Directory(path, pattern=pattern))
        elif path.exists() or "://" in source:
            files.append(AudioMetaData(uri=str(path) if path.exists() else source))
        else:
            raise SystemExit(_usage(f"no such file or directory: {source}"))
    if files:
        parts.append(files)
    return CompositeDataset(*parts)


def _cmd_ingest(args) -> int:
    document = _load_document(args.document)
    if args.store:
        document = zarr_settings(args.store)(
            type(document.__name__, (document,), {"__module__": document.__module__}))
    dataset = _dataset(args.sources, args.pattern)
    client = None
    scheduler = args.scheduler
    if "://" in scheduler:
        distributed = optional_import("distributed", extra="distributed")
        client = distributed.Client(scheduler)
    try:
        report = ingest(dataset, document, client=client, scheduler=scheduler,
                        progress=not args.quiet, num_workers=args.workers,
                        repair=args.repair)
    finally:
        if client is not None:
            client.close()
    print(report)
    for source, reason in report.failed.items():
        print(f"failed: {source}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_info(args) -> int:
    store = FeatureStore(args.store, read_only=True)
    print(store.describe())
    return 0


def _cmd_verify(args) -> int:
    store = FeatureStore(args.store, read_only=True)
    if store.root() is None:
        print(f"zounds-xr: no feature store at {args.store}", file=sys.stderr)
        return 1
    problems = store.verify(progress=not args.quiet)
    for problem in problems.get("", []):
        print(f"damaged store: {problem}")
    documents = {k: v for k, v in problems.items() if k}
    for doc_id, found in documents.items():
        for problem in found:
            print(f"damaged: {doc_id}: {problem}")
    try:
        n = len(store.catalog())
    except ZoundsError:
        n = len(documents)
    print(f"{n - len(documents)} of {n} documents healthy, {len(documents)} damaged"
          + ("; recompute them with zx.ingest(dataset, Sound, repair=True)"
             if documents else "")
          + ("; lost catalog fragments: zounds-xr repair STORE" if any(
              "zounds-xr repair" in p for v in documents.values() for p in v) else ""))
    return 1 if problems else 0


def _cmd_repair(args) -> int:
    store = FeatureStore(args.store)
    fixed = store.repair()
    for key in fixed:
        print(f"rewritten from the log: {key}")
    print(f"{len(fixed)} catalog fragments rewritten")
    return 0


def _cmd_upgrade(args) -> int:
    store = FeatureStore(args.store)
    n = store.upgrade()
    print(f"{args.store}: every chunk checked, log written ({n} commits)" if n else
          f"{args.store}: has a commit log already")
    return 0


def _cmd_demo(args) -> int:
    run_demo(audio=args.audio, output=args.output, scheduler=args.scheduler,
             workers=args.workers, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zounds-xr", description="Feature extraction for sound on xarray, dask and zarr.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="process audio files into a feature store")
    p.add_argument("sources", nargs="+", help="audio files, directories or URLs")
    p.add_argument("--document", required=True, help="document class as module:Class")
    p.add_argument("--store", help="Zarr store path or URL (overrides the class' binding)")
    p.add_argument("--scheduler", default="threads",
                   help="threads, processes, synchronous, or a dask scheduler address "
                        "(tcp://host:8786)")
    p.add_argument("--workers", type=int, default=None, help="local workers")
    p.add_argument("--pattern", default="**/*", help="glob for files inside directories")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--repair", action="store_true",
                   help="verify the stored documents first and recompute damaged ones")
    p.set_defaults(run=_cmd_ingest)

    # the commands that take one store (and, where progress shows, --quiet)
    for name, run, quiet, text in [
            ("info", _cmd_info, False,
             "documents, hours, features, failures and parts of a store (read from its "
             "catalog)"),
            ("verify", _cmd_verify, True,
             "check every committed file against the store's log (sizes, checksums), by "
             "document and feature"),
            ("repair", _cmd_repair, False,
             "rewrite lost or damaged catalog fragments from the store's log"),
            ("upgrade", _cmd_upgrade, False,
             "write the commit log of a store made before stores had one (checks every "
             "chunk first)")]:
        p = sub.add_parser(name, help=text)
        p.add_argument("store", help="Zarr store path or URL")
        p.set_defaults(run=run)
        if quiet:
            p.add_argument("--quiet", action="store_true", help="no progress")

    p = sub.add_parser("demo", help="ingest a generated (or given) corpus and report")
    p.add_argument("--audio", help="a directory of audio (default: generate a corpus)")
    p.add_argument("--output", default="demo-output", help="where the store and PNG go")
    p.add_argument("--scheduler", default="processes", help="threads or processes")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_cmd_demo)
    _add_explorer_subcommands(sub)  # serve, index
    return parser


def main(argv=None) -> int:
    """Run one ``zounds-xr`` command and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``None``: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code (see the module docs): the command's own, 130 when interrupted,
        1 when it raised a :class:`~zounds_xr.core.errors.ZoundsError` (printed to stderr,
        with its class name). Bad arguments exit through argparse (``SystemExit``
        with code 2).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted: completed documents are kept; run again to resume",
              file=sys.stderr)
        return 130
    except ZoundsError as exc:
        print(f"zounds-xr: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
