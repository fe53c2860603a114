"""Learned features (issue 27): a small conv encoder over 1 s clips inside ingest vs a
naive loop, 1 and 2 workers, rerun reproducibility, and update() after a new checkpoint.

Corpus: ``n`` distinct 1 s 16 kHz clips (``bench_corpus.clips``, cached in ``_data``).
Both paths compute the same thing: a 64-band mel (n_fft 2048, hop 512, 28 frames),
log + mean/std normalisation (a pipeline fitted on 50 clips), then a conv encoder
(``ConvEncoder``: two 1-D convolutions over time, mean, a linear layer to 16 dims) on
every window of 8 frames at a hop of 4 (6 windows a clip).

Contenders, interleaved round by round:

- naive loop, librosa: ``soundfile.read``, ``librosa.feature.melspectrogram``, the
  normalisation, the model on the clip's windows (``torch.inference_mode``), ``np.save``
  per clip
- naive loop, zounds_xr: the same with ``zx.load`` and ``zx.mel_spectrogram`` (the
  library's mel: isolates what ingest adds)
- ``zx.ingest`` of a Document (mel stored, ``Learned`` embedding stored) in one process
  (``scheduler="synchronous"``), and with 2 workers (``scheduler="processes"``, the
  session's warm pool)
- a control: the same fixed CPU work (bench_ingest's |rfft| frames) on 1 and 2 started
  processes: what 2 processes can get from this shared machine at that moment.

After the rounds: reproducibility (1-process store vs 2-worker store: other processes,
another grouping of documents into parts and batches; and a 1-process ingest with
another ``batch_frames``), and ``update()`` after a new checkpoint of the encoder: what
it recomputed, which arrays changed, its time.

    .venv/bin/python benchmarks/bench_learned.py [--quick] [--rounds 2] [--clips 2000]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

import _signals  # noqa: E402
from bench_corpus import clips, paths_of  # noqa: E402
from bench_ingest import control  # noqa: E402

GOAL_NAIVE, GOAL_WORKERS, GOAL_COSINE = 3.0, 1.7, 0.9999
N_MELS, WINDOW, HOP, DIM = 64, 8, 4, 16


class ConvEncoder(torch.nn.Module):
    """A small conv encoder of mel windows ``(batch, window, mels)`` -> ``(batch, dim)``."""

    def __init__(self, n_mels: int = N_MELS, dim: int = DIM):
        super().__init__()
        self.init_kwargs = {"n_mels": n_mels, "dim": dim}
        self.conv1 = torch.nn.Conv1d(n_mels, 64, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(64, 32, 3, padding=1)
        self.out = torch.nn.Linear(32, dim)

    def forward(self, x):
        h = torch.relu(self.conv1(x.transpose(1, 2)))
        return self.out(torch.relu(self.conv2(h)).mean(-1))


def graph(store, model, norm, batch_frames=1024):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Clip(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=N_MELS,
                         wscheme=zx.SR16000() * (512, 2048), store=True)
        embedding = zx.Learned(model, needs=mel, window=WINDOW, hop=HOP, preprocess=norm,
                               batch_frames=batch_frames)
    return Clip


def _embed(model, norm, mel: np.ndarray) -> np.ndarray:
    """The naive path's model step for one clip: ``mel`` is (frames, bands)."""
    import xarray as xr

    frames = np.asarray(norm(xr.DataArray(mel, dims=["time", "band"])).values, "f4")
    k = 1 + (frames.shape[0] - WINDOW) // HOP
    batch = np.stack([frames[i * HOP:i * HOP + WINDOW] for i in range(k)])
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()


def naive_librosa(paths, out, model, norm):
    import librosa

    for i, p in enumerate(paths):
        y, sr = sf.read(p, dtype="float32")
        m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512,
                                           n_mels=N_MELS, center=False)
        np.save(os.path.join(out, f"{i}.npy"), _embed(model, norm, m.T))


def naive_zx(paths, out, model, norm):
    import zounds_xr as zx

    for i, p in enumerate(paths):
        m = zx.mel_spectrogram(zx.load(p), n_mels=N_MELS, wscheme=zx.SR16000() * (512, 2048))
        np.save(os.path.join(out, f"{i}.npy"), _embed(model, norm, m.values))


def embeddings(Clip) -> dict[str, np.ndarray]:
    return {i: np.asarray(Clip(i).embedding.values) for i in Clip.ids()}


def compare_runs(a: dict, b: dict) -> tuple[float, float]:
    """(min cosine over vectors, fraction of documents bitwise equal)."""
    worst, same = 1.0, 0
    for k, x in a.items():
        y = b[k]
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        cos = (x64 * y64).sum(-1) / np.linalg.norm(x64, axis=-1) / np.linalg.norm(y64, axis=-1)
        worst = min(worst, float(cos.min()))
        same += bool(np.array_equal(x, y))
    return worst, same / len(a)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 clips, 1 round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clips", type=int, default=None)
    args = parser.parse_args(argv)
    import concurrent.futures
    import multiprocessing

    import zounds_xr as zx
    from zounds_xr.documents.batch import process_pool
    from zounds_xr.learn import Log, MeanStdNormalization, PreprocessingPipeline

    n = args.clips or (300 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 2)
    paths = paths_of(clips(n, 1.0, 16000))
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_learned_", dir=_signals.DATA))
    torch.manual_seed(0)
    model = ConvEncoder().eval()
    norm = PreprocessingPipeline([Log(), MeanStdNormalization()]).fit(
        [zx.mel_spectrogram(zx.load(p), n_mels=N_MELS, wscheme=zx.SR16000() * (512, 2048))
         for p in paths[:50]])
    ctx = multiprocessing.get_context("spawn")
    pools = {k: concurrent.futures.ProcessPoolExecutor(k, mp_context=ctx) for k in (1, 2)}
    control_secs = 120.0 if not args.quick else 30.0

    cpu: dict[str, list[float]] = {}  # CPU seconds of the in-process contenders

    def ingest(label, **kw):
        store = str(work / f"{label}-{time.perf_counter_ns()}.zarr")
        Clip = graph(store, model, norm, kw.pop("batch_frames", 1024))
        t0, c0 = time.perf_counter(), time.process_time()
        report = zx.ingest(paths, Clip, progress=False, **kw)
        elapsed = time.perf_counter() - t0
        if kw.get("scheduler") == "synchronous":
            cpu.setdefault(label, []).append(time.process_time() - c0)
        assert len(report.processed) == n and not report.failed, report
        return elapsed, Clip

    def naive(fn):
        out = tempfile.mkdtemp(dir=work)
        t0, c0 = time.perf_counter(), time.process_time()
        fn(paths, out, model, norm)
        elapsed = time.perf_counter() - t0
        cpu.setdefault(fn.__name__, []).append(time.process_time() - c0)
        shutil.rmtree(out)
        return elapsed

    contenders = {
        "naive loop, librosa mel": lambda: (naive(naive_librosa), None),
        "naive loop, zounds_xr mel": lambda: (naive(naive_zx), None),
        "ingest, 1 process": lambda: ingest("one", scheduler="synchronous"),
        "ingest, 2 workers": lambda: ingest("two", scheduler="processes", num_workers=2),
        "control, 1 process": lambda: (control(pools[1], 2, control_secs), None),
        "control, 2 processes": lambda: (control(pools[2], 2, control_secs), None),
    }
    try:
        for k in (1, 2):
            control(pools[k], k, 1.0)  # start the control's processes
        process_pool(2)
        warm = paths[:40]  # imports, librosa's caches, the pool's workers
        naive_librosa(warm, tempfile.mkdtemp(dir=work), model, norm)
        naive_zx(warm, tempfile.mkdtemp(dir=work), model, norm)
        for kw in ({"scheduler": "synchronous"}, {"scheduler": "processes",
                                                   "num_workers": 2}):
            zx.ingest(warm, graph(str(work / f"warm{len(kw)}.zarr"), model, norm),
                      progress=False, **kw)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        stores: dict[str, type] = {}
        loads = []
        for _ in range(rounds):
            for name, fn in contenders.items():
                elapsed, Clip = fn()
                times[name].append(elapsed)
                if Clip is not None:
                    stores[name] = Clip
            loads.append(os.getloadavg()[0])

        # reproducibility: other processes, another grouping, another batch size
        one = embeddings(stores["ingest, 1 process"])
        two = embeddings(stores["ingest, 2 workers"])
        cos_workers, same_workers = compare_runs(one, two)
        other = embeddings(ingest("batch", scheduler="synchronous", batch_frames=200)[1])
        cos_batch, same_batch = compare_runs(one, other)

        # a new checkpoint: update() recomputes the embedding alone
        Old = stores["ingest, 1 process"]
        before = Old.catalog()
        new_model = ConvEncoder()
        new_model.load_state_dict(model.state_dict())
        with torch.no_grad():
            new_model.out.weight.mul_(1.5)
        New = graph(Old._store_for(None).url, new_model, norm)
        stale = {k: v for k, v in New.versions().items() if v != Old.versions()[k]}
        t0 = time.perf_counter()
        done = New.update()
        t_update = time.perf_counter() - t0
        after = New.catalog()
        recomputed = sorted({f for v in done.values() for f in v})
        mel_same = bool((after["mel.array"] == before["mel.array"]).all())
        emb_new = bool((after["embedding.array"] != before["embedding.array"]).all())
    finally:
        for pool in pools.values():
            pool.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}

    def ratio(slow, fast):
        return statistics.median(s / f for s, f in zip(times[slow], times[fast], strict=True))

    control_x = ratio("control, 1 process", "control, 2 processes")

    def cpu_ratio(slow):
        return statistics.median(s / f for s, f in zip(cpu[slow], cpu["one"], strict=False))

    lines = [
        "## Learned features: a conv encoder inside ingest (bench_learned, issue 27)", "",
        f"{n} x 1 s 16 kHz clips -> 64-band mel (2048/512, 28 frames) -> log + mean/std -> "
        f"conv encoder (2 x Conv1d, mean, Linear -> {DIM}) on windows of {WINDOW} frames, "
        f"hop {HOP}; {rounds} round(s), interleaved; {os.cpu_count()} CPUs shared with "
        f"other engineers' work (1-min load average after each round: "
        f"{', '.join(f'{x:.1f}' for x in loads)}); torch {torch.__version__}, "
        f"OMP/MKL/OpenBLAS threads = 1.", "",
        "| contender | median s | clips/s | ratio | goal |", "|---|---:|---:|---:|---|"]
    rows = [
        ("naive loop, librosa mel", "", ""),
        ("naive loop, zounds_xr mel", "", ""),
        ("ingest, 1 process", f"{ratio('naive loop, librosa mel', 'ingest, 1 process'):.2f}x "
         f"vs naive librosa, {ratio('naive loop, zounds_xr mel', 'ingest, 1 process'):.2f}x "
         f"vs naive zounds_xr (CPU time: {cpu_ratio('naive_librosa'):.2f}x, "
         f"{cpu_ratio('naive_zx'):.2f}x)", f">= {GOAL_NAIVE}x"),
        ("ingest, 2 workers", f"{ratio('ingest, 1 process', 'ingest, 2 workers'):.2f}x vs 1 "
         f"process ({ratio('naive loop, librosa mel', 'ingest, 2 workers'):.2f}x vs naive "
         f"librosa)", f">= {GOAL_WORKERS}x vs 1 process"),
        ("control, 1 process", "", ""),
        ("control, 2 processes", f"{control_x:.2f}x vs 1 process",
         "the machine's 1 -> 2 process ceiling now"),
    ]
    for name, r, goal in rows:
        rate = "" if name.startswith("control") else f"{n / med[name]:.0f}"
        lines.append(f"| {name} | {med[name]:.2f} | {rate} | {r} | {goal} |")
    lines += [
        "", "| measure | value | goal |", "|---|---:|---|",
        f"| rerun in other processes (2 workers) vs 1 process: min cosine over "
        f"{sum(len(v) for v in one.values())} vectors | {cos_workers:.7f} | >= {GOAL_COSINE} |",
        f"| same: documents bitwise equal | {100 * same_workers:.0f}% | where torch allows |",
        f"| batch_frames 200 vs 1024 (another batch shape): min cosine | {cos_batch:.7f} | "
        f">= {GOAL_COSINE} |",
        f"| same: documents bitwise equal | {100 * same_batch:.0f}% | not promised |",
        f"| `update()` after a new checkpoint: stale versions | {', '.join(sorted(stale))} | "
        f"the learned feature only |",
        f"| same: features recomputed | {', '.join(recomputed)} (in {len(done)} documents) | "
        f"the learned feature only |",
        f"| same: mel arrays untouched, embedding arrays new | {mel_same}, {emb_new} | "
        f"True, True |",
        f"| same: time | {t_update:.2f} s ({n / t_update:.0f} clips/s) | |",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
