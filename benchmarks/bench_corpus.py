"""Corpus scale: short clips through ingest vs a naive loop, and a 10^6-row catalog.

Issue 30's table, measured side by side in one run (contenders interleaved round by
round; ratios are medians of per-round ratios):

- 1 s 16 kHz clips to a stored 64-band mel, with 400/160 (speech) and 2048/512 framing,
  and 5 s 44.1 kHz clips resampled to 22.05 kHz to a 128-band mel, against the naive
  loop (``soundfile.read`` or ``librosa.load(sr=22050)`` with librosa's default
  resampler, ``librosa.feature.melspectrogram``, ``np.save``) and its read + mel alone;
  ingest in-process and on the process scheduler with 1 and 2 workers (the session's
  warm pool), with the CPU time of in-process and of the 1-worker pool; the pure-CPU
  control (the same work on 1 and 2 started processes) in the same rounds; files in the
  store per 100 documents; then, in a phase of its own, the 2-worker pool against a
  2-worker ``LocalCluster``;
- ``--profile``: one worker's task (``batch._process_batch``) in one process, CPU ms per
  clip by decode / labelling / compute / write / rest (works on the code before issue
  30 too, with ``PYTHONPATH`` at its checkout), and soxr one-shot vs streaming on
  float32/float64 and clips as channels;
- a catalog of 10^6 documents whose fragments are made by the real writer
  (``PartWriter``: 100 parts of 10^4 documents, one stored feature of one frame each,
  then ``compact()``): ``Sound.catalog()`` and ingest's resume check of every id, each
  from a fresh store object;
- a random 1 s window of a stored mel from a 100,000-document store (made by the real
  writer), local: through the catalog row and ``store.array`` (the loaders' path) and
  through ``Sound(doc_id).mel.sel(...)``.

    .venv/bin/python benchmarks/bench_corpus.py [--quick] [--rounds 3] [--only-clips]
        [--only-catalog] [--profile]
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

import _signals  # noqa: E402


# ---------------------------------------------------------------------- corpora
def clips(n: int, seconds: float, rate: int) -> pathlib.Path:
    """``n`` distinct clips (tones, chirps and noise from seeds), cached in _data."""
    d = _signals.DATA / f"clips_{n}x{seconds:g}s_{rate}"
    done = d / ".done"
    if done.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(n):
        rng = np.random.default_rng(i)
        f0 = 80 + 900 * rng.random()
        x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * rng.random() * t))
        x += 0.05 * rng.standard_normal(t.size)
        sf.write(d / f"clip{i:06d}.wav", x.astype(np.float32), rate, subtype="PCM_16")
    done.write_text("ok")
    return d


def paths_of(d: pathlib.Path) -> list[str]:
    return sorted(str(p) for p in d.glob("*.wav"))


# ---------------------------------------------------------------------- graphs
def graph_a(store, hop=512, win=2048):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Clip(zx.Document):
        mel = zx.Feature(zx.mel_spectrogram, needs=zx.Document.audio, n_mels=64,
                         wscheme=zx.SR16000() * (hop, win), store=True)
    return Clip


def graph_speech(store):
    """25 ms / 10 ms framing (400/160 at 16 kHz), the usual one for speech."""
    return graph_a(store, 160, 400)


def graph_b(store):
    import zounds_xr as zx

    @zx.zarr_settings(store)
    class Clip(zx.Document):
        resampled = zx.Feature(zx.resample, needs=zx.Document.audio,
                               samplerate=zx.SR22050())
        mel = zx.Feature(zx.mel_spectrogram, needs=resampled, n_mels=128,
                         wscheme=zx.SR22050() * (512, 2048), store=True)
    return Clip


def naive_a(paths, out, hop=512, win=2048):
    """``soundfile.read`` + librosa's mel + ``np.save`` per clip (``out=None``: no
    saves, the loop's read + mel alone, which does not depend on the file system)."""
    import librosa

    for i, p in enumerate(paths):
        y, sr = sf.read(p, dtype="float32")
        m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=win, hop_length=hop,
                                           n_mels=64)
        if out is not None:
            np.save(os.path.join(out, f"{i}.npy"), m)


def naive_speech(paths, out):
    naive_a(paths, out, 160, 400)


def naive_b(paths, out, res_type="soxr_hq"):
    """``librosa.load(sr=22050)`` with its default resampler (soxr HQ) + mel + save."""
    import librosa

    for i, p in enumerate(paths):
        y, sr = librosa.load(p, sr=22050, res_type=res_type)
        m = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512,
                                           n_mels=128)
        if out is not None:
            np.save(os.path.join(out, f"{i}.npy"), m)


def files_in(path) -> int:
    return sum(len(f) for _, _, f in os.walk(path))


def _control_unit(_=None) -> float:
    """The control's unit of pure CPU work (|rfft| of windowed frames), ~0.3 s."""
    y = np.random.default_rng(0).standard_normal(44100 * 20).astype("f4")
    frames = np.lib.stride_tricks.sliding_window_view(y, 2048)[::512]
    t0 = time.perf_counter()
    for _ in range(8):  # a unit that lasts well beyond a task's dispatch (was ~0.04 s)
        for i in range(0, len(frames), 512):
            np.abs(np.fft.rfft(frames[i:i + 512] * np.hanning(2048).astype("f4"), axis=-1))
    return time.perf_counter() - t0


def _usage(pids) -> tuple[float, int]:
    """CPU seconds and minor page faults so far of processes ``pids`` (Linux ``/proc``;
    zeros elsewhere)."""
    cpu, faults = 0.0, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        faults += int(fields[7])
    return cpu, faults


def _children_cpu(pool) -> float:
    """CPU seconds used so far by a process pool's workers."""
    return _usage(getattr(pool, "_processes", None) or {})[0]


def _timeline(report, t0: float, t1: float, workers: int) -> dict[str, float]:
    """Where a multi-worker ingest's wall time (``time.time()`` from ``t0`` to ``t1``)
    was not spent on tasks of every worker, in seconds, from ``IngestReport.tasks``:
    ingest's process alone before the first task starts and after the last one ends
    (planning; gathering, commit of a split file, compaction, indexes), and the idle
    tail: how long the first worker to finish waited for the last (a worker that got
    no task waited for the whole span)."""
    start = min(t.start for t in report.tasks)
    end = max(t.end for t in report.tasks)
    last = {}
    for t in report.tasks:
        last[t.worker] = max(last.get(t.worker, 0.0), t.end)
    first_done = min(last.values()) if len(last) >= workers else start
    return {"before": start - t0, "tail": end - first_done, "after": t1 - end}


def compare(name, paths, graph, naive, rounds, work, bare=False):
    """Seconds per round of each contender, interleaved round by round: the naive loop
    (and, with ``bare``, its read + compute alone), ingest in-process, on the process
    scheduler with 1 and 2 workers (the session's warm pool), and the control: the
    same 4 units of pure CPU work on 1 and 2 already-started processes (the
    LocalCluster: :func:`cluster_pair`)."""
    import concurrent.futures
    import multiprocessing

    import zounds_xr as zx
    from zounds_xr.documents.batch import process_pool

    process_pool(1), process_pool(2)
    ctx = multiprocessing.get_context("spawn")
    controls = {n: concurrent.futures.ProcessPoolExecutor(n, mp_context=ctx) for n in (1, 2)}
    for n, pool in controls.items():
        list(pool.map(_control_unit, range(n)))
    runs = {"ingest 1 process": {"scheduler": "synchronous"},
            "processes 1 worker": {"scheduler": "processes", "num_workers": 1},
            "processes 2 workers": {"scheduler": "processes", "num_workers": 2}}
    times: dict[str, list] = {"naive": []}
    if bare:
        times["naive read + compute"] = []
    times.update({k: [] for k in runs})
    times.update({"control 1 process": [], "control 2 processes": []})
    # CPU seconds (this process, and a pool's workers): robust to others' load
    cpu = {"naive": [], "ingest 1 process": [], "processes 1 worker": []}
    files: dict[str, int] = {}  # files in the store, by contender
    timeline: dict[str, list] = {"before": [], "tail": [], "after": []}  # 2 workers
    warm = tempfile.mkdtemp(dir=work)  # warm-up: librosa's caches, imports, the pools
    naive(paths[:20], warm)
    for label, kwargs in runs.items():
        zx.ingest(paths[:40], graph(os.path.join(warm, f"{label}.zarr")), progress=False,
                  **kwargs)
    shutil.rmtree(warm)
    for r in range(rounds):
        out = tempfile.mkdtemp(dir=work)
        t0, c0 = time.perf_counter(), time.process_time()
        naive(paths, out)
        times["naive"].append(time.perf_counter() - t0)
        cpu["naive"].append(time.process_time() - c0)
        shutil.rmtree(out)
        if bare:
            t0 = time.perf_counter()
            naive(paths, None)
            times["naive read + compute"].append(time.perf_counter() - t0)
        for label, kwargs in runs.items():
            store = os.path.join(work, f"{name}-{r}-{label.replace(' ', '_')}.zarr")
            Clip = graph(store)
            pool = process_pool(kwargs["num_workers"]) if "num_workers" in kwargs else None
            w0 = _children_cpu(pool)
            t0, c0, wall0 = time.perf_counter(), time.process_time(), time.time()
            report = zx.ingest(paths, Clip, progress=False, **kwargs)
            times[label].append(time.perf_counter() - t0)
            if kwargs.get("num_workers") == 2:
                for k, v in _timeline(report, wall0, time.time(), 2).items():
                    timeline[k].append(v)
            if label in cpu:
                cpu[label].append(time.process_time() - c0 + _children_cpu(pool) - w0)
            assert len(report.processed) == len(paths) and not report.failed, report
            files[label] = files_in(store)
            shutil.rmtree(store)
        for n in (1, 2):
            t0 = time.perf_counter()
            list(controls[n].map(_control_unit, range(4)))
            times[f"control {n} process{'es' if n > 1 else ''}"].append(
                time.perf_counter() - t0)
    for pool in controls.values():
        pool.shutdown()
    return times, cpu, files, timeline


def cluster_pair(name, paths, graph, rounds, work, client) -> tuple[dict, dict, dict]:
    """Seconds per round of the process pool's 2 workers and a 2-worker LocalCluster
    (``client``), interleaved, with each contender's CPU seconds and minor page faults
    (ingest's process and its workers). A phase of its own: an idle LocalCluster (its
    scheduler in this process, two nannies, two workers) alongside the other contenders
    took CPU from them (the 1-worker pool measured 0.5-0.7x of in-process that way,
    ~1.0x without it, on a loaded machine). Both contenders are warmed alike, by a
    whole ingest of the corpus: worker processes that have run whole ingests reuse a
    grown heap (the pool's had, in :func:`compare`, and ran 1.3x faster than fresh)."""
    import zounds_xr as zx
    from zounds_xr.documents.batch import process_pool

    cluster_pids = list(client.run(os.getpid).values())
    runs = {"processes 2 workers": ({"scheduler": "processes", "num_workers": 2},
                                    lambda: list(process_pool(2)._processes)),
            "LocalCluster 2 workers": ({"client": client}, lambda: cluster_pids)}
    warm = tempfile.mkdtemp(dir=work)
    for label, (kwargs, _) in runs.items():
        zx.ingest(paths, graph(os.path.join(warm, f"{label}.zarr")), progress=False,
                  **kwargs)
    shutil.rmtree(warm)
    times: dict[str, list] = {k: [] for k in runs}
    cpu: dict[str, list] = {k: [] for k in runs}
    faults: dict[str, list] = {k: [] for k in runs}
    for r in range(rounds):
        for label, (kwargs, pids) in runs.items():
            store = os.path.join(work, f"{name}-pair-{r}-{label.replace(' ', '_')}.zarr")
            (w0, f0), c0 = _usage(pids()), time.process_time()
            t0 = time.perf_counter()
            report = zx.ingest(paths, graph(store), progress=False, **kwargs)
            times[label].append(time.perf_counter() - t0)
            w1, f1 = _usage(pids())
            cpu[label].append(time.process_time() - c0 + w1 - w0)
            faults[label].append((f1 - f0) / len(paths))
            assert len(report.processed) == len(paths) and not report.failed, report
            shutil.rmtree(store)
    return times, cpu, faults


def _ratio(times, slow, fast) -> float:
    return statistics.median(a / b for a, b in zip(times[slow], times[fast], strict=True))


# ---------------------------------------------------------------------- catalog scale
def write_catalog(path, n_docs: int, per_part: int, frames: int = 1, n_mels: int = 64):
    """A store of ``n_docs`` documents written by the real writer (``PartWriter``), each
    with a stored ``mel`` of ``frames`` frames; compacted at the end."""
    import xarray as xr

    import zounds_xr as zx
    from zounds_xr.documents.catalog import meta_columns

    store = zx.FeatureStore(path)
    Clip = graph_a(store)
    info = Clip._feature_info("mel")
    scale = zx.MelScale(zx.FrequencyBand(0, 8000), n_mels)
    coords = zx.frequency_coords(scale)
    rng = np.random.default_rng(0)
    hop = zx.SR16000() * (512, 2048)
    data = rng.random((frames, n_mels), dtype=np.float32)
    index = zx.TimeIndex.from_params(frames, hop)
    chunk = xr.DataArray(data, dims=("time", "frequency")).assign_coords(
        xr.Coordinates.from_xindex(index)).assign_coords(coords)
    for start in range(0, n_docs, per_part):
        part = store.part()
        for i in range(start, min(n_docs, start + per_part)):
            sinks = part.sinks({"mel": info})
            sinks["mel"](chunk)
            meta = {"uri": f"/corpus/clip{i:07d}.wav", "samplerate": 16000, "channels": 1,
                    "licensing": None, "description": None, "tags": None,
                    "frames": 16000 * frames // 32, "duration_seconds": frames * 0.032}
            part.finish_document(f"{i:032x}", meta_columns(meta))
        part.commit()
    store.compact()
    return Clip


def catalog_scale(work, n_docs, per_part, rounds):
    import zounds_xr as zx

    path = os.path.join(work, "catalog.zarr")
    t0 = time.perf_counter()
    write_catalog(path, n_docs, per_part)
    built = time.perf_counter() - t0
    cat_t, resume_t = [], []
    ids = [f"{i:032x}" for i in range(n_docs)]
    for _ in range(rounds):
        Clip = graph_a(zx.FeatureStore(path))
        t0 = time.perf_counter()
        cat = Clip.catalog()
        cat_t.append(time.perf_counter() - t0)
        assert len(cat) == n_docs
        Clip = graph_a(zx.FeatureStore(path))
        t0 = time.perf_counter()
        # what ingest's resume does, once: rows and current versions, from the store
        pending = Clip._pending(Clip._store_for(None).catalog(), ids)
        todo = [i for i, left in zip(ids, pending, strict=True) if left != ()]
        resume_t.append(time.perf_counter() - t0)
        assert not todo
    t0 = time.perf_counter()
    text = zx.FeatureStore(path).describe()
    info_s = time.perf_counter() - t0
    assert f"{n_docs} documents" in text
    shutil.rmtree(path)
    return {"built": built, "catalog": statistics.median(cat_t),
            "resume": statistics.median(resume_t), "info": info_s}


def window_reads(work, n_docs, per_part, reads):
    """Median ms of a random 1 s window (32 frames of a 2 s document's mel)."""
    import zounds_xr as zx

    path = os.path.join(work, "windows.zarr")
    write_catalog(path, n_docs, per_part, frames=63)
    Clip = graph_a(zx.FeatureStore(path))
    store = zx.open_store(path)
    cat = store.catalog()
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n_docs, reads)
    starts = rng.integers(0, 63 - 32, reads)
    via_array, via_doc = [], []
    _ = Clip(cat.index[0]).mel.values  # opening costs (imports, first metadata)
    arrays = cat["mel.array"].to_numpy()
    offsets = cat["mel.offset"].to_numpy()
    for k, s in zip(picks, starts, strict=True):
        t0 = time.perf_counter()
        o = int(offsets[k]) + int(s)
        x = store.array(arrays[k])[o:o + 32]
        via_array.append(time.perf_counter() - t0)
        assert x.shape == (32, 64)
        t0 = time.perf_counter()
        y = Clip(cat.index[k]).mel.isel(time=slice(int(s), int(s) + 32)).values
        via_doc.append(time.perf_counter() - t0)
        np.testing.assert_array_equal(x, y)
    shutil.rmtree(path)
    return 1e3 * statistics.median(via_array), 1e3 * statistics.median(via_doc)


def profile_task(paths, graph, work) -> dict[str, float]:
    """CPU ms per clip of one worker's task (``batch._process_batch``, in this process),
    by where it goes: decode (libsndfile reads and checks), labelling clips
    (``AudioSamples``), compute (the graph's functions), write (the part's arrays and
    catalog rows), the rest (grouping, per-document bookkeeping). Instruments the
    functions both the old and the new writer have, so that the same run measures both
    (``PYTHONPATH`` at another checkout)."""
    import collections
    import contextlib
    import importlib
    import importlib.util

    import zounds_xr as zx
    from zounds_xr.documents import batch
    from zounds_xr.documents import document, parts
    from zounds_xr.io import decode
    from zounds_xr.spectral.kernels import set_default_threads

    set_default_threads(1)  # as the pool's workers
    spent: collections.Counter = collections.Counter()
    nested: list[float] = []  # time of timed calls inside the running timed call

    def timed(label, func):
        def wrapper(*args, **kwargs):
            nested.append(0.0)
            c0 = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.process_time() - c0
                inner = nested.pop()
                spent[label] += elapsed - inner  # a sink called by the graph is a write
                if nested:
                    nested[-1] += elapsed
        return wrapper

    class Opened:  # decode._open's context: opening the file and its checks
        def __init__(self, cm):
            self.cm = cm

        def __enter__(self):
            return timed("decode", self.cm.__enter__)()

        def __exit__(self, *exc):
            return timed("decode", self.cm.__exit__)(*exc)

    # the reader and its opener: io/reader.py since the io split, decode.py before
    reading = importlib.import_module("zounds_xr.io.reader") if importlib.util.find_spec(
        "zounds_xr.io.reader") else decode
    reader_class = getattr(reading, "Reader", None) or decode._Reader
    opener_name = "open_reader" if hasattr(decode, "open_reader") else "_open"
    opener = getattr(decode, opener_name)
    undo_open = contextlib.ExitStack()
    setattr(decode, opener_name, lambda *args, **kwargs: Opened(opener(*args, **kwargs)))
    undo_open.callback(setattr, decode, opener_name, opener)
    patches = [(reader_class, "_readf", "decode"),
               (decode, "AudioSamples", "label clips"),
               (document, "AudioSamples", "label clips"),
               (document.Document, "_run", "compute"),
               (parts._FeatureSink, "__call__", "write"),
               (parts.PartWriter, "finish_document", "write"),
               (parts.PartWriter, "commit", "write")]
    if "read_pcm" in vars(decode):  # short PCM clips' one-read decode (issue 30)
        patches.append((decode, "read_pcm", "decode"))
    if "finish_stacked" in vars(parts.PartWriter):  # stacked clips' rows in one append
        patches.append((parts.PartWriter, "finish_stacked", "write"))
    with contextlib.ExitStack() as undo:
        undo.enter_context(undo_open)
        for owner, attr, label in patches:
            original = owner.__dict__[attr]
            func = original.__func__ if isinstance(original, classmethod) else original
            wrapped = timed(label, func)
            setattr(owner, attr, classmethod(wrapped) if isinstance(original, classmethod)
                    else wrapped)
            undo.callback(setattr, owner, attr, original)
        Clip = graph(os.path.join(work, "profile-warm.zarr"))
        zx.ingest(paths[:20], Clip, scheduler="synchronous", progress=False)
        Clip = graph(os.path.join(work, "profile.zarr"))
        Clip._store_for(None).root(create=True)
        ids = [Clip.id_for(p) for p in paths]
        new = "stale" in batch._process_batch.__doc__  # items carry what is stale
        items = [(zx.AudioMetaData(uri=p), i, None) if new else (zx.AudioMetaData(uri=p), i)
                 for p, i in zip(paths, ids, strict=True)]
        spent.clear()
        c0 = time.process_time()
        results = batch._process_batch(Clip, items)
        total = time.process_time() - c0
    if isinstance(results, tuple):  # (outcomes, TaskTiming) since the workers' timeline
        results = results[0]
    assert all(r[0] == "ok" for r in results), results[:2]
    shutil.rmtree(os.path.join(work, "profile.zarr"), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "profile-warm.zarr"), ignore_errors=True)
    out = {k: 1e3 * v / len(paths) for k, v in spent.items()}
    out["rest"] = 1e3 * total / len(paths) - sum(out.values())
    out["total"] = 1e3 * total / len(paths)
    return out


def soxr_lines(reps: int = 5) -> list[str]:
    """soxr on 5 s of 44.1 kHz -> 22.05 kHz at VHQ: one-shot ``soxr.resample`` against
    the streaming resampler (one chunk), float32 and float64, one clip against 19 clips
    as the channels of one call (what a stack of clips does), CPU ms per clip."""
    import soxr

    rng = np.random.default_rng(0)
    n, k = 220500, 19

    def cpu_ms(func, clips):
        func()
        c0 = time.process_time()
        for _ in range(reps):
            func()
        return 1e3 * (time.process_time() - c0) / reps / clips

    lines = ["| soxr VHQ, 5 s 44.1 -> 22.05 kHz, CPU ms per clip | float32 | float64 |",
             "|---|---:|---:|"]
    rows: dict[str, list[float]] = {}
    for dtype in ("float32", "float64"):
        one = (0.1 * rng.standard_normal(n)).astype(dtype)
        many = np.ascontiguousarray((0.1 * rng.standard_normal((n, k))).astype(dtype))

        def stream(x=one, dtype=dtype):
            soxr.ResampleStream(44100, 22050, 1, dtype=dtype,
                                quality="VHQ").resample_chunk(x, last=True)

        for label, func, clips in (
                ("one-shot `soxr.resample`, one clip",
                 lambda x=one: soxr.resample(x, 44100, 22050, quality="VHQ"), 1),
                ("streaming `ResampleStream`, one clip", stream, 1),
                (f"one-shot, {k} clips as the channels of one call",
                 lambda x=many: soxr.resample(x, 44100, 22050, quality="VHQ"), k)):
            rows.setdefault(label, []).append(cpu_ms(func, clips))
    lines += [f"| {label} | {a:.2f} | {b:.2f} |" for label, (a, b) in rows.items()]
    return lines


def _profile_lines(n_a, n_b, work) -> list[str]:
    a = paths_of(clips(n_a, 1.0, 16000))
    b = paths_of(clips(n_b, 5.0, 44100))
    rows = {"1 s clips, 400/160": profile_task(a, graph_speech, work),
            "5 s clips, resampled": profile_task(b, graph_b, work)}
    keys = ["decode", "label clips", "compute", "write", "rest", "total"]
    lines = ["| one task, CPU ms per clip | " + " | ".join(keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row.get(k, 0.0):.3f}" for k in keys)
                     + " |")
    return lines


def _clip_lines(n_a, n_b, rounds, work) -> list[str]:
    import distributed

    a = paths_of(clips(n_a, 1.0, 16000))
    b = paths_of(clips(n_b, 5.0, 44100))
    loads = [os.getloadavg()[0]]
    results = {
        "speech": compare("speech", a, graph_speech, naive_speech, rounds, work, bare=True),
        "a": compare("a", a, graph_a, naive_a, rounds, work, bare=True),
        "b": compare("b", b, graph_b, naive_b, rounds, work)}
    graphs = {"speech": (a, graph_speech), "a": (a, graph_a), "b": (b, graph_b)}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        pairs = {key: cluster_pair(key, *graphs[key], rounds, work, client)
                 for key in results}
    loads.append(os.getloadavg()[0])
    labels = {"speech": f"{n_a} x 1 s 16 kHz -> 64-band mel, 400/160 framing",
              "a": f"{n_a} x 1 s 16 kHz -> 64-band mel, 2048/512 framing",
              "b": f"{n_b} x 5 s 44.1 kHz -> 22.05 kHz -> 128-band mel"}
    lines = [f"{rounds} interleaved rounds (1-min load average {loads[0]:.1f} at the start, "
             f"{loads[1]:.1f} at the end). Clips/s from the median round; ratios are "
             f"medians of per-round ratios. Naive loop: `soundfile.read` (5 s clips: "
             f"`librosa.load(sr=22050)`, librosa's default resampler soxr HQ; ingest "
             f"resamples at VHQ) + `librosa.feature.melspectrogram` + `np.save` per clip; "
             f"'read + mel' is the same loop without the saves. Control: 4 units of pure "
             f"CPU work on 1 and on 2 started processes, in the same rounds. LocalCluster: "
             f"processes 2 workers and a 2-worker LocalCluster interleaved in a later phase "
             f"(an idle cluster alongside slowed the pool contenders), each warmed by a "
             f"whole ingest of the corpus first; CPU: ingest's process and the workers.",
             "",
             "| corpus | naive clips/s | ingest 1 process | vs naive | vs naive read + mel "
             "| CPU-time ratio | processes 1 worker (vs in-process) | same, CPU time | "
             "processes 2 workers | vs naive | 2 vs 1 worker | control 2 vs 1 process | "
             "LocalCluster 2 workers vs processes 2 (wall; CPU; minor page faults per clip of "
             "the workers, processes / cluster) | files per 100 documents (in-process; "
             "2 workers) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    spans = ["", "Processes with 2 workers, where the wall time was not both workers' tasks "
                 "(`IngestReport.tasks`; medians over rounds, ms): ingest's process alone "
                 "before the first task and after the last, and the idle tail (the first "
                 "worker done waiting for the last).", "",
             "| corpus | 2 vs 1 worker / control's 2 vs 1 process | before the tasks | "
             "idle tail | after the tasks | wall |", "|---|---:|---:|---:|---:|---:|"]
    for key, (times, _, _, timeline) in results.items():
        scaling = (_ratio(times, 'processes 1 worker', 'processes 2 workers')
                   / _ratio(times, 'control 1 process', 'control 2 processes'))
        spans.append(
            f"| {labels[key]} | {scaling:.2f} | "
            + " | ".join(f"{1e3 * statistics.median(timeline[k]):.0f}"
                         for k in ("before", "tail", "after"))
            + f" | {1e3 * statistics.median(times['processes 2 workers']):.0f} |")
    for key, (times, cpu, files, _) in results.items():
        n = n_a if key != "b" else n_b
        rate = {k: n / statistics.median(v) for k, v in times.items()}
        bare = (f"{_ratio(times, 'naive read + compute', 'ingest 1 process'):.2f}x"
                if "naive read + compute" in times else "–")
        pair_t, pair_cpu, pair_faults = pairs[key]
        cluster = (f"{_ratio(pair_t, 'processes 2 workers', 'LocalCluster 2 workers'):.2f}x; "
                   f"{_ratio(pair_cpu, 'processes 2 workers', 'LocalCluster 2 workers'):.2f}x; "
                   + " / ".join(f"{statistics.median(pair_faults[k]):.1f}"
                                for k in ('processes 2 workers', 'LocalCluster 2 workers')))
        cpu_ratio = statistics.median(x / y for x, y in zip(cpu["naive"],
                                                             cpu["ingest 1 process"],
                                                             strict=True))
        pool_cpu = statistics.median(x / y for x, y in zip(cpu["ingest 1 process"],
                                                            cpu["processes 1 worker"],
                                                            strict=True))
        lines.append(
            f"| {labels[key]} | {rate['naive']:.0f} | {rate['ingest 1 process']:.0f} | "
            f"{_ratio(times, 'naive', 'ingest 1 process'):.2f}x | {bare} | "
            f"{cpu_ratio:.2f}x | {rate['processes 1 worker']:.0f} "
            f"({_ratio(times, 'ingest 1 process', 'processes 1 worker'):.2f}x) | "
            f"{pool_cpu:.2f}x | {rate['processes 2 workers']:.0f} | "
            f"{_ratio(times, 'naive', 'processes 2 workers'):.2f}x | "
            f"{_ratio(times, 'processes 1 worker', 'processes 2 workers'):.2f}x | "
            f"{_ratio(times, 'control 1 process', 'control 2 processes'):.2f}x | "
            f"{cluster} | {100 * files['ingest 1 process'] / n:.1f}; "
            f"{100 * files['processes 2 workers'] / n:.1f} |")
    return lines + spans


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora (smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--catalog-docs", type=int, default=None)
    parser.add_argument("--window-docs", type=int, default=None)
    parser.add_argument("--only-catalog", action="store_true",
                        help="only the catalog and window measures")
    parser.add_argument("--only-clips", action="store_true", help="only the clip measures")
    parser.add_argument("--profile", action="store_true",
                        help="only where one worker's task spends its CPU time")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    n_a, n_b = (300, 60) if quick else (2000, 300)
    n_cat = args.catalog_docs or (20_000 if quick else 1_000_000)
    n_win = args.window_docs or (5_000 if quick else 100_000)
    os.environ.setdefault("ZX_BENCH_QUICK", "1" if quick else "0")
    _signals.DATA.mkdir(parents=True, exist_ok=True)  # a fresh clone has no _data/ yet
    work = tempfile.mkdtemp(prefix="bench_corpus_", dir=_signals.DATA)
    lines = ["## Corpus scale: short clips, parts and the catalog (bench_corpus)", ""]
    try:
        lines.append(f"2 shared CPUs (load {os.getloadavg()[0]:.1f} at the start).")
        if args.profile:
            lines += _profile_lines(min(n_a, 1000), min(n_b, 100), work)
            lines += [""] + soxr_lines()
            print("\n".join(lines))
            return
        if not args.only_catalog:
            lines += _clip_lines(n_a, n_b, rounds, work)
        if args.only_clips:
            print("\n".join(lines))
            return
        c = catalog_scale(work, n_cat, max(1, n_cat // 100), rounds)
        wa, wd = window_reads(work, n_win, max(1, n_win // 20), 200 if quick else 1000)
        lines += ["", "| measure | value | goal |", "|---|---:|---|",
                  f"| write {n_cat} documents with the real writer (100 parts) + compact "
                  f"| {c['built']:.1f} s | |",
                  f"| `Sound.catalog()` of {n_cat} documents | {c['catalog']:.2f} s | "
                  f"<= 2 s |",
                  f"| resume check of every id ({n_cat}) | {c['resume']:.2f} s | <= 2 s |",
                  f"| `zounds-xr info` (describe) of {n_cat} documents | {c['info']:.2f} s "
                  f"| |",
                  f"| random 1 s window of a stored mel, {n_win}-document store: catalog "
                  f"row + `store.array` | {wa:.2f} ms | median <= 2 ms |",
                  f"| same through `Sound(doc_id).mel.isel(...)` (lazy DataArray) | "
                  f"{wd:.2f} ms | |"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
