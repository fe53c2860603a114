"""Fuzzing the decoders: seeded mutants of small files the test writes itself.

Every mutant (flipped and zeroed bytes, truncations, duplicated Ogg pages, corrupted
header fields, NaN and infinity in float WAVs) goes through every decoding path:
``load`` of the path and of the bytes, ``stream`` at two chunk sizes, ``open_audio``
at two block sizes. Each must give a ZoundsError, or the same samples as every other
path. They run in a subprocess that measures its peak RSS (bounded: no buffer sized by
a header) and guards each file with an alarm (a hang fails the file, not the suite).
"""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

import zounds_xr as zx

#: growth of the worker's peak RSS over its warmed-up baseline that fails the suite
RSS_LIMIT_MB = 256
#: seconds one file may take on all paths together before it counts as a hang
FILE_ALARM_S = 60

# --------------------------------------------------------------------------- sources


def _signal(rate, channels, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    cols = [0.3 * np.sin(2 * np.pi * (330 + 97 * c) * t) + 0.05 * rng.standard_normal(len(t))
            for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


#: name -> (format, subtype, rate, channels, seconds)
SOURCES = {
    "pcm16.wav": ("WAV", "PCM_16", 8000, 2, 0.6),
    "float.wav": ("WAV", "FLOAT", 11025, 1, 0.5),
    "pcm24.flac": ("FLAC", "PCM_24", 16000, 1, 0.7),
    "stereo.flac": ("FLAC", "PCM_16", 22050, 2, 0.5),
    "vorbis.ogg": ("OGG", "VORBIS", 22050, 2, 1.5),
    "mono.mp3": ("MP3", "MPEG_LAYER_III", 16000, 1, 1.0),
    "pcm16.aiff": ("AIFF", "PCM_16", 8000, 1, 0.4),
}


def _write_sources(directory):
    out = {}
    for name, (fmt, subtype, rate, channels, seconds) in SOURCES.items():
        path = directory / name
        data = _signal(rate, channels, seconds, seed=len(name))
        with sf.SoundFile(path, "w", rate, channels, format=fmt, subtype=subtype) as f:
            for i in range(0, len(data), 4096):
                f.write(data[i:i + 4096])
        out[name] = path.read_bytes()
    return out


# --------------------------------------------------------------------------- mutations
def _wav_field(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    b[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(b)


def _flac_streaminfo(data: bytes, frames=None, rate=None) -> bytes:
    # STREAMINFO follows "fLaC" and a 4-byte block header; bytes 18..26 pack 20 bits of
    # rate, 3 of channels, 5 of bits per sample and 36 of total frames
    b = bytearray(data)
    bits = int.from_bytes(b[18:26], "big")
    r, rest = bits >> 44, bits & ((1 << 44) - 1)
    if rate is not None:
        r = rate
    if frames is not None:
        rest = (rest & ~((1 << 36) - 1)) | frames
    b[18:26] = ((r << 44) | rest).to_bytes(8, "big")
    return bytes(b)


def _ogg_pages(data: bytes) -> list[int]:
    pages, at = [], data.find(b"OggS")
    while at >= 0:
        pages.append(at)
        at = data.find(b"OggS", at + 4)
    return pages


def _mutants(sources: dict[str, bytes], seed: int = 17) -> list[tuple[str, str, bytes]]:
    """``(name, kind, bytes)`` for every mutant, the same for a given seed."""
    rng = np.random.default_rng(seed)
    out = []
    for name, data in sources.items():
        n = len(data)
        for k in range(4):  # a few random bits anywhere
            b = bytearray(data)
            for _ in range(1 + k):
                b[int(rng.integers(0, n))] ^= 1 << int(rng.integers(0, 8))
            out.append((name, f"flip{k}", bytes(b)))
        for k in range(3):  # bytes of the header region
            b = bytearray(data)
            b[int(rng.integers(0, min(n, 96)))] = int(rng.integers(0, 256))
            out.append((name, f"head{k}", bytes(b)))
        for k in range(2):  # a zeroed range
            b = bytearray(data)
            at, length = int(rng.integers(0, n - 16)), int(rng.integers(16, 512))
            b[at:at + length] = bytes(len(b[at:at + length]))
            out.append((name, f"zero{k}", bytes(b)))
        for k, frac in enumerate((0.02, 0.5, 0.93)):  # truncations
            out.append((name, f"cut{k}", data[:max(1, int(n * frac))]))
        if name.endswith(".ogg"):
            pages = _ogg_pages(data)
            middle = pages[len(pages) // 2]
            b = bytearray(data)
            b[middle + 200:middle + 208] = b[middle + 192:middle + 200]
            out.append((name, "page-dup8", bytes(b)))
            page = data[middle:pages[len(pages) // 2 + 1]]
            out.append((name, "page-twice", data[:middle] + page + data[middle:]))
            out.append((name, "last-page-dup8",
                        data[:-40] + data[-48:-40] + data[-32:]))
        if name.endswith(".wav"):
            for rate in (1, 10_000_001, 1_000_000_000, 0):
                out.append((name, f"rate{rate}", _wav_field(data, 24, "<I", rate)))
            for channels in (0, 7, 2000):
                out.append((name, f"channels{channels}", _wav_field(data, 22, "<H", channels)))
            out.append((name, "datasize-huge", _wav_field(data, 40, "<I", 0xFFFFFFF0)))
        if name.endswith(".flac"):
            frames = sf.info(io.BytesIO(data)).frames
            for total in (2 ** 35 - 1, 3 * frames, frames // 2, 0):
                out.append((name, f"frames{total}", _flac_streaminfo(data, frames=total)))
            for rate in (1, 2 ** 20 - 1):
                out.append((name, f"flac-rate{rate}", _flac_streaminfo(data, rate=rate)))
        if name == "float.wav":
            values = np.frombuffer(data, dtype="<f4", offset=44).copy()
            for k, bad in enumerate((np.nan, np.inf, -np.inf)):
                v = values.copy()
                v[rng.integers(0, len(v), size=3 + k)] = bad
                out.append((name, f"nonfinite{k}", data[:44] + v.astype("<f4").tobytes()))
    return out


# --------------------------------------------------------------------------- the worker
WORKER = r'''
import json, resource, signal, sys, time, warnings
import numpy as np
import zounds_xr as zx

ALARM = int(sys.argv[2])

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class Hang(Exception):
    pass

def on_alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, on_alarm)

def joined(chunks):
    chunks = list(chunks)
    return np.concatenate([c.values for c in chunks]) if chunks else None

PATHS = {
    "load": lambda p, pol: zx.load(p, on_nonfinite=pol).values,
    "load-bytes": lambda p, pol: zx.load(open(p, "rb").read(), on_nonfinite=pol).values,
    "stream-1000": lambda p, pol: joined(zx.stream(p, chunksize=1000, on_nonfinite=pol)),
    "stream": lambda p, pol: joined(zx.stream(p, on_nonfinite=pol)),
    "open_audio": lambda p, pol: zx.open_audio(p, on_nonfinite=pol).values,
    "open_audio-1000": lambda p, pol: zx.open_audio(p, chunks=1000, on_nonfinite=pol).values,
}

def run(path, policy):
    results, values = {}, {}
    for label, fn in PATHS.items():
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                v = fn(path, policy)
            values[label] = v
            nonfinite = any(issubclass(w.category, zx.NonFiniteSamplesWarning) for w in caught)
            results[label] = ["ok", list(v.shape), nonfinite]
        except Hang:
            raise
        except Exception as exc:
            results[label] = ["error", type(exc).__name__, isinstance(exc, zx.ZoundsError),
                              str(exc)[:300]]
    ref = values.get("load")
    for label, v in values.items():
        if ref is not None and v.shape == ref.shape:
            same = np.isnan(v) == np.isnan(ref)
            d = np.abs(np.where(same & np.isfinite(v) & np.isfinite(ref), v - ref, 0))
            exact_inf = bool(np.all((v == ref) | ~np.isinf(ref)))
            diff = float(d.max()) if d.size else 0.0
            results[label].append(diff if bool(same.all()) and exact_inf else float("inf"))
    return results

warm = sys.argv[3]
for label, fn in PATHS.items():
    fn(warm, "warn")
baseline = rss_mb()
jobs = json.loads(open(sys.argv[1]).read())
for job in jobs:
    t0 = time.perf_counter()
    signal.alarm(ALARM)
    try:
        res = run(job["path"], job["policy"])
        status = "done"
    except Hang:
        res, status = {}, "hang"
    finally:
        signal.alarm(0)
    print(json.dumps({"job": job, "status": status, "results": res,
                      "rss_growth_mb": rss_mb() - baseline,
                      "seconds": time.perf_counter() - t0}), flush=True)
'''


def _run_worker(tmp_path, jobs, warm_path):
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(manifest), str(FILE_ALARM_S), str(warm_path)],
        check=False, capture_output=True, text=True, timeout=FILE_ALARM_S * len(jobs) + 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(jobs), proc.stderr[-3000:]
    return lines


def _check(record) -> list[str]:
    """What is wrong with one mutant's outcomes (empty when it passes)."""
    job, results = record["job"], record["results"]
    where = f"{job['name']}/{job['kind']} ({job['policy']})"
    if record["status"] != "done":
        return [f"{where}: took more than {FILE_ALARM_S} s (a hang)"]
    problems = []
    outcomes = {r[0] for r in results.values()}
    for label, r in results.items():
        if r[0] == "error" and not r[2]:
            problems.append(f"{where}: {label} raised {r[1]} (not a ZoundsError): {r[3]}")
    if outcomes == {"ok", "error"}:
        summary = {k: (v[1] if v[0] == "ok" else f"{v[1]}: {v[3][:120]}")
                   for k, v in results.items()}
        problems.append(f"{where}: paths disagree: {summary}")
    if outcomes == {"ok"}:
        shapes = {tuple(r[1]) for r in results.values()}
        if len(shapes) > 1:
            problems.append(f"{where}: lengths differ: "
                            f"{ {k: r[1] for k, r in results.items()} }")
        mp3 = job["name"].endswith(".mp3")
        for label, r in results.items():
            # libsndfile's MP3 decoding depends slightly on where reading starts (seeks)
            tol = 2e-3 if (mp3 and label.startswith("open_audio")) else 0.0
            if len(r) > 3 and not r[3] <= tol:
                problems.append(f"{where}: {label} differs from load by {r[3]}")
    return problems


@pytest.fixture(scope="module")
def fuzz_records(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    sources = _write_sources(tmp_path)
    jobs = []
    for i, (name, kind, data) in enumerate(_mutants(sources)):
        path = tmp_path / f"m{i:03d}-{kind}-{name}"
        path.write_bytes(data)
        policies = ["warn", "raise"] if kind.startswith("nonfinite") else ["warn"]
        jobs += [{"path": str(path), "name": name, "kind": kind, "policy": p}
                 for p in policies]
    records = _run_worker(tmp_path, jobs, tmp_path / "pcm16.wav")
    return records


def test_mutants_are_deterministic(tmp_path):
    sources = _write_sources(tmp_path)
    first, second = _mutants(sources), _mutants(sources)
    assert [m[2] for m in first] == [m[2] for m in second]
    assert len(first) >= 80


def test_every_mutant_gives_one_answer_on_every_path(fuzz_records):
    problems = [p for record in fuzz_records for p in _check(record)]
    assert not problems, "\n".join(problems)
    # the campaign exercises both answers: clear errors and identical decodes
    outcomes = [{r[0] for r in rec["results"].values()} for rec in fuzz_records]
    assert sum(o == {"error"} for o in outcomes) >= 20
    assert sum(o == {"ok"} for o in outcomes) >= 20


def test_peak_memory_is_bounded(fuzz_records):
    worst = max(fuzz_records, key=lambda r: r["rss_growth_mb"])
    assert worst["rss_growth_mb"] < RSS_LIMIT_MB, (worst["job"], worst["rss_growth_mb"])


def test_header_fields_are_named(fuzz_records):
    by_kind = {(r["job"]["name"], r["job"]["kind"]): r["results"] for r in fuzz_records}
    for kind, word in [("rate1000000000", "sample rate"), ("rate10000001", "sample rate"),
                       ("channels2000", "channel")]:
        load = by_kind[("pcm16.wav", kind)]["load"]
        assert load[0] == "error" and word in load[3].lower(), (kind, load)
    huge = by_kind[("pcm24.flac", f"frames{2 ** 35 - 1}")]["open_audio"]
    assert huge[0] == "error" and "frame count" in huge[3], huge


def test_nonfinite_policies_on_every_path(fuzz_records):
    nonfinite = [r for r in fuzz_records if r["job"]["kind"].startswith("nonfinite")]
    assert nonfinite
    for record in nonfinite:
        results = record["results"]
        if record["job"]["policy"] == "warn":
            assert all(r[0] == "ok" and r[2] for r in results.values()), results
        else:
            assert all(r[0] == "error" and r[1] == "AudioDecodeError" and "non-finite" in r[3]
                       for r in results.values()), results


def test_truncated_mp3_keeps_the_decoded_frames_on_every_path(fuzz_records):
    # the documented exception: an MP3 whose decoder ends early without an error (its
    # Xing header over-counts once the file is cut) gives the frames that decode
    cut = [r for r in fuzz_records
           if r["job"]["name"] == "mono.mp3" and r["job"]["kind"] in ("cut1", "cut2")]
    assert len(cut) == 2
    for record in cut:
        path = record["job"]["path"]
        with sf.SoundFile(path) as f:
            announced = f.frames
        results = record["results"]
        assert all(r[0] == "ok" for r in results.values()), results
        frames = results["load"][1][0]
        assert 0 < frames < announced


# --------------------------------------------------------------------------- in process
def test_zero_frame_and_clean_files_still_decode(tmp_path):
    sources = _write_sources(tmp_path)
    for name in sources:
        path = tmp_path / name
        whole = zx.load(path)
        assert whole.sizes["time"] > 0
        lazy = zx.open_audio(path, chunks=777)
        np.testing.assert_allclose(lazy.values, whole.values,
                                   atol=2e-3 if name.endswith(".mp3") else 0)


def test_stream_buffer_is_bounded_by_the_file_not_the_request(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(4000, dtype=np.float32), 8000)
    chunks = list(zx.stream(path, chunksize=10 ** 12))
    assert [c.sizes["time"] for c in chunks] == [4000]


# --------------------------------------------------------------------------- ingest
def _make_sound(path):
    @zx.zarr_settings(path)
    class Sound(zx.Document):
        pass

    return Sound


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["threads", "processes", "distributed"])
def test_ingest_gives_load_s_answer_on_every_scheduler(tmp_path, scheduler):
    (tmp_path / "src").mkdir()
    sources = _write_sources(tmp_path / "src")
    audio = tmp_path / "audio"
    audio.mkdir()
    chosen = {"pcm16.wav": ["flip0"], "vorbis.ogg": ["page-dup8", "last-page-dup8"],
              "pcm24.flac": [f"frames{3 * 11200}", "frames0"], "mono.mp3": ["cut1"],
              "float.wav": ["nonfinite0"]}
    expected_failed, expected_ok = set(), set()
    for i, (name, kind, data) in enumerate(_mutants(sources)):
        if kind not in chosen.get(name, []):
            continue
        path = audio / f"m{i:03d}-{kind}-{name}"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", zx.NonFiniteSamplesWarning)
                zx.load(path)
            expected_ok.add(str(path))
        except zx.ZoundsError:
            expected_failed.add(str(path))
    assert expected_failed and expected_ok
    Sound = _make_sound(tmp_path / "features.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zx.NonFiniteSamplesWarning)
        if scheduler == "distributed":
            distributed = pytest.importorskip("distributed")
            with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                          dashboard_address=None) as cluster, \
                    distributed.Client(cluster) as client:
                report = zx.ingest(zx.Directory(audio), Sound, client=client, progress=False)
        else:
            report = zx.ingest(zx.Directory(audio), Sound, scheduler=scheduler,
                               progress=False, num_workers=2)
    assert set(report.failed) == expected_failed
    assert all("AudioDecodeError" in reason for reason in report.failed.values())
    assert len(report.processed) == len(expected_ok)
    for doc_id in report.processed:  # what was stored is what load decodes
        stored = Sound(doc_id)
        uri = Sound.catalog().loc[doc_id, "uri"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", zx.NonFiniteSamplesWarning)
            np.testing.assert_array_equal(np.asarray(stored.audio.values),
                                          zx.load(uri).values)


# --------------------------------------------------------------------------- real Ogg
def _decoded(path, label):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zx.NonFiniteSamplesWarning)
        if label == "load":
            return zx.load(path).values
        if label.startswith("stream"):
            size = 1000 if label == "stream-1000" else zx.Seconds(30)
            return np.concatenate([c.values for c in zx.stream(path, chunksize=size)])
        return zx.open_audio(path, chunks=1000 if label == "open_audio-1000"
                             else zx.Seconds(60)).values


@pytest.mark.slow
@pytest.mark.corpus
def test_damaged_real_ogg_files_agree_on_every_path(corpus, tmp_path):
    # the campaign that found Ogg files decoding differently on different paths, on
    # real recordings (Vorbis at 44.1 and 48 kHz): every path gives load's samples,
    # or every path raises AudioDecodeError
    sources = {p.name: p.read_bytes() for p in [corpus / "effects" / "freedesktop_bell.oga",
                                                 corpus / "effects" / "lomiri_A440_44k.ogg"]
               if p.exists()}
    if not sources:
        pytest.skip("no Ogg files in the corpus")
    problems, answers = [], set()
    labels = ("load", "stream-1000", "stream", "open_audio-1000", "open_audio")
    for seed in (5,):
        for i, (name, kind, data) in enumerate(_mutants(sources, seed=seed)):
            path = tmp_path / f"s{seed}-{i:03d}-{kind}-{name}"
            path.write_bytes(data)
            got = {}
            for label in labels:
                try:
                    got[label] = _decoded(path, label)
                except zx.AudioDecodeError as exc:
                    got[label] = exc
            errors = {k for k, v in got.items() if isinstance(v, Exception)}
            answers.add(bool(errors))
            if errors and len(errors) < len(labels):
                problems.append(f"{path.name}: only {sorted(errors)} raise")
            elif not errors:
                ref = got["load"]
                problems += [f"{path.name}: {k} differs from load" for k, v in got.items()
                             if not np.array_equal(v, ref, equal_nan=True)]
    assert not problems, "\n".join(problems)
    assert answers == {True, False}  # both clear errors and identical decodes
