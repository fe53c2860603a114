"""Run every benchmark and write benchmarks/RESULTS.md (``make bench``).

Each ``bench_*.py`` is a script that prints a markdown section (tables of medians over
several rounds, with ratios computed per round, since the machine is shared and
noisy). This runner executes them one after another in fresh processes (so that
peak-memory figures do not leak between them) and collects their output with the
versions used.

    .venv/bin/python benchmarks/run.py              # everything -> benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py stft mel     # some of them
    .venv/bin/python benchmarks/run.py --quick      # smoke run (CI): short signals, few
                                                    # rounds -> benchmarks/_data/RESULTS-quick.md

The generated signals (``_signals.py``) are made first (cached in ``benchmarks/_data/``).
With ``--quick`` a script gets ``--quick`` when it declares that option, else the
arguments in ``QUICK_ARGS``; ``ZX_BENCH_QUICK=1`` is set in its environment either way.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
#: quick-mode arguments of the scripts that have no ``--quick`` option
QUICK_ARGS = {
    "bench_stft.py": ["--minutes", "1", "--rounds", "2"],
    "bench_mel.py": ["--minutes", "1", "--rounds", "2"],
    "bench_resample.py": ["--seconds", "10", "--repeat", "1"],
    "bench_documents.py": ["--minutes", "5"],
    "bench_s3.py": ["--seconds", "30", "--rounds", "1"],
}
PACKAGES = ["zounds_xr", "numpy", "scipy", "xarray", "dask", "zarr", "soundfile", "soxr",
            "librosa", "torch", "distributed"]


def _versions() -> str:
    rows = []
    for name in PACKAGES:
        try:
            rows.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            rows.append(f"{name} (not installed)")
    return ", ".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="benchmark names (e.g. stft mel); all by default")
    parser.add_argument("--output", default=None,
                        help="default benchmarks/RESULTS.md (--quick: _data/RESULTS-quick.md)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: short signals, few rounds (for CI)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed to each script (default: none)")
    args = parser.parse_args(argv)
    output = pathlib.Path(args.output or (HERE / "_data" / "RESULTS-quick.md" if args.quick
                                          else HERE / "RESULTS.md"))
    output.parent.mkdir(parents=True, exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    t_all = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.quick:
        env["ZX_BENCH_QUICK"] = "1"
    print("== generating signals (cached in benchmarks/_data/)", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "_signals.py")]
                   + (["--quick"] if args.quick else []), check=True, cwd=HERE.parent, env=env)
    t_signals = time.perf_counter() - t0
    sections, failed, timings = [], [], []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        extra = []
        if args.quick:
            extra = (["--quick"] if '"--quick"' in script.read_text()
                     else QUICK_ARGS.get(script.name, []))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(script), *extra], capture_output=True,
                                  text=True, cwd=HERE.parent, env=env, timeout=args.timeout)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = "timeout"
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr) or ""
            err += f"\n(killed after {args.timeout:g} s)"
        elapsed = time.perf_counter() - t0
        timings.append((script.name, elapsed, "ok" if rc == 0 else f"FAILED ({rc})"))
        print(out[-4000:], err[-2000:] if rc else "", flush=True)
        if rc:
            failed.append(script.name)
            sections.append(f"## {script.stem}\n\nFAILED (exit {rc}):\n\n```\n"
                            f"{err[-3000:]}\n```\n")
        else:
            body = out.strip()
            if not body.startswith("#"):
                # a script without its own heading; plain text (not a markdown table)
                # goes into a code block so that its columns survive
                markdown = any(line.startswith("|") for line in body.splitlines())
                body = f"## {script.stem}\n\n" + (body if markdown
                                                    else f"```\n{body}\n```")
            sections.append(body + f"\n\n_{script.name}: {elapsed:.0f} s_\n")
    total = time.perf_counter() - t_all
    summary = ("## Run time\n\n| script | seconds | status |\n|---|---:|---|\n"
               f"| _signals.py (generate or reuse the signals) | {t_signals:.0f} | ok |\n"
               + "".join(f"| {n} | {t:.0f} | {st} |\n" for n, t, st in timings)
               + f"| **total** | **{total:.0f}** | |\n")
    header = (
        "# Benchmark results" + (" (quick smoke run: short signals, not the targets' "
                                 "conditions)" if args.quick else "") + "\n\n"
        f"Generated by `make bench{' ARGS=--quick' if args.quick else ''}` on "
        f"{datetime.date.today().isoformat()}: "
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.\n\n"
        f"Versions: {_versions()}.\n\n"
        "Each figure is the median of several rounds; ratios are computed per round and "
        "their median is quoted.\n")
    output.write_text(header + "\n" + "\n".join(sections) + "\n" + summary)
    print(f"wrote {output} in {total:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
