"""What a stream chunk costs: ``zx.stream`` of one file at several chunk sizes.

Run:  .venv/bin/python benchmarks/bench_stream_chunks.py [--seconds 5] [--rounds 5]

Each chunk is a labelled AudioSamples (a DataArray with a TimeIndex), so a stream's time
grows with its number of chunks; the fuzz campaign found ``chunksize=1`` taking 19.6 s
on a 5 s file. ``stream`` therefore refuses chunks of fewer than ``MIN_CHUNK_FRAMES``
(256) frames (a duration is raised to that floor). This prints, for a 44.1 kHz WAV,
the median seconds and times real time of ``stream`` at the floor and above, with
``load`` (one read) as the reference; rounds are interleaved.
"""
from __future__ import annotations

import argparse
import io

import numpy as np
import soundfile as sf

import zounds_xr as zx
from zounds_xr.io.decode import MIN_CHUNK_FRAMES

from _harness import median, ratio, rounds, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 1.0, 2
    rate = 44100
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    sf.write(buffer, (0.1 * rng.standard_normal(int(rate * args.seconds))).astype(np.float32),
             rate, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()

    def streamed(chunksize):
        return lambda: sum(c.sizes["time"] for c in zx.stream(data, chunksize=chunksize))

    sizes = {f"stream, {n} frames": n for n in (MIN_CHUNK_FRAMES, 1024, 4096)}
    functions = {name: streamed(n) for name, n in sizes.items()}
    functions["stream, 30 s (default)"] = streamed(zx.Seconds(30))
    functions["load"] = lambda: zx.load(data)
    times = rounds(functions, n=args.rounds)
    rows = []
    for name, ts in times.items():
        n = sizes.get(name)
        chunks = -(-int(rate * args.seconds) // n) if n else 1
        rows.append([name, chunks, median(ts), args.seconds / median(ts),
                     ratio(times, name, "load")])
    print(f"## Stream chunk sizes (bench_stream_chunks)\n\n{args.seconds:g} s of 44.1 kHz "
          f"PCM_16 from memory; {args.rounds} interleaved rounds, medians.\n")
    print(table(["path", "chunks", "seconds", "x real time", "time / load"], rows))


if __name__ == "__main__":
    main()
