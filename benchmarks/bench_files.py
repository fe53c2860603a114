"""Files in the store per 100 documents, by kind, at the corpus sizes people have.

Issue 30's goal is <= 1 file per 100 documents. What a store holds:

- **store**: the root and ``parts/`` groups, the log's group, its entries (one per part
  and per compaction) and the catalog fragment(s);
- **part, fixed**: per part and stored feature, what DESIGN's layout requires whatever the
  part's size: the part's group, the feature's group, the frames array's metadata, and
  the labels the frames share (the ``frequency`` coordinate: metadata and one chunk);
- **shards**: the frames themselves (~32 MiB each).

The fixed files are paid once per part, and a part is one writer (one ingest task), so
the rate falls with the corpus: 300 five-second clips on 2 workers are 2 parts of 150,
ESC-50's 2,000 five-second clips 2 parts of 1,000. Measured for 2,000 x 1 s 16 kHz
clips (Speech Commands' kind) to a stored 64-band mel, and 300 and 2,000 x 5 s
44.1 kHz clips (ESC-50's kind and size) resampled to 22.05 kHz to a 128-band mel, each
ingested in one process (synchronous), with ingest's default (2 threads) and on the
process scheduler with 2 workers. The naive loop writes one ``.npy`` per clip: 100 per
100 documents.

    .venv/bin/python benchmarks/bench_files.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _signals  # noqa: E402
from bench_corpus import clips, graph_a, graph_b, paths_of  # noqa: E402

KINDS = ("store", "part, fixed", "shards")


def kind_of(store: str, relpath: str) -> str:
    """Which of ``KINDS`` a file of the store is (path relative to the store's root)."""
    parts = relpath.split(os.sep)
    if parts[0] != "parts" or len(parts) == 2:  # the root, log, catalog, parts/zarr.json
        return "store"
    if "c" not in parts[4:-1]:  # parts/<part>/<feature>/<array>/c/...: a chunk
        return "part, fixed"
    meta = json.loads(pathlib.Path(store, *parts[:4], "zarr.json").read_text())
    sharded = any(c["name"] == "sharding_indexed" for c in meta.get("codecs", ()))
    return "shards" if sharded else "part, fixed"  # the frames, or the labels' chunk


def census(store: str) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for root, _, files in os.walk(store):
        for f in files:
            counts[kind_of(store, os.path.relpath(os.path.join(root, f), store))] += 1
    counts["parts"] = len(os.listdir(os.path.join(store, "parts"))) - 1  # its zarr.json
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora (smoke run)")
    args = parser.parse_args(argv)
    import zounds_xr as zx

    corpora = [("1 s 16 kHz -> 64-band mel", 300 if args.quick else 2000, 1, 16000,
                graph_a),
               ("5 s 44.1 kHz -> 22.05 kHz -> 128-band mel", 60 if args.quick else 300, 5,
                44100, graph_b)]
    if not args.quick:
        corpora.append(("5 s 44.1 kHz -> 22.05 kHz -> 128-band mel (ESC-50's size)", 2000,
                        5, 44100, graph_b))
    runs = {"1 process (synchronous)": {"scheduler": "synchronous"},
            "default (threads, 2)": {},
            "processes, 2 workers": {"scheduler": "processes", "num_workers": 2}}
    _signals.DATA.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench_files_", dir=_signals.DATA)
    rows = []
    try:
        for name, n, seconds, rate, graph in corpora:
            paths = paths_of(clips(n, seconds, rate))
            for label, kwargs in runs.items():
                store = os.path.join(work, "store.zarr")
                t0 = time.perf_counter()
                report = zx.ingest(paths, graph(store), progress=False, **kwargs)
                took = time.perf_counter() - t0
                assert len(report.processed) == n and not report.failed, report
                c = census(store)
                total = sum(c[k] for k in KINDS)
                rows.append(f"| {n} x {name} | {label} | {c['parts']} | "
                            + " | ".join(str(c[k]) for k in KINDS)
                            + f" | {total} | **{100 * total / n:.2f}** | {took:.1f} |")
                shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = ["### Files per 100 documents (bench_files)", "",
             "| corpus | ingest | parts | " + " | ".join(KINDS)
             + " | files | per 100 documents (goal <= 1) | s |",
             "|---|---|---:|" + "---:|" * (len(KINDS) + 3)] + rows
    lines += ["", "The naive loop: one `.npy` per clip, 100 per 100 documents."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
