"""The cache-blocked kernels: backends agree, fused and batched forms equal the plain ones,
librosa agreement, bounded requests refused up front."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import scipy.fft
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr.spectral import fft_backend
from zounds_xr.spectral import kernels
from zounds_xr.spectral.kernels import SparseRebin

librosa = pytest.importorskip("librosa")

SR = zx.SR22050()
HANN = zx.HanningWindowingFunc(periodic=True)
SCHEME = SR * (256, 1024)

BACKENDS = ["scipy"] + (["torch"] if fft_backend._torch() is not None else [])


@pytest.fixture
def signal():
    rng = np.random.default_rng(3)
    t = np.arange(30000) / 22050
    y = 0.1 * rng.standard_normal(t.size) + 0.5 * np.sin(2 * np.pi * 440 * t)
    return y.astype(np.float32)


@pytest.fixture(params=BACKENDS)
def fft_lib(request):
    previous = zx.set_fft_backend(request.param)
    yield request.param
    zx.set_fft_backend(previous)


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_import_does_not_import_torch():
    # nor does a transform with the default ("auto") backend: torch's FFT is used when
    # the process has imported torch already (its import costs seconds and 180 MB)
    code = ("import sys, numpy as np, zounds_xr as zx; "
            "import zounds_xr.spectral.kernels, zounds_xr.spectral.features; "
            "print('torch' in sys.modules); "
            "a = zx.AudioSamples(np.zeros(4096, 'float32'), zx.SR11025()); "
            "zx.mel_spectrogram(a); zx.stft(a); "
            "print('torch' in sys.modules, zx.fft_backend())")
    env = {k: v for k, v in os.environ.items() if k != "ZOUNDS_XR_FFT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.split() == ["False", "False", "scipy"]


@pytest.mark.skipif(len(BACKENDS) < 2, reason="torch is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree(signal, dtype):
    audio = zx.AudioSamples(signal.astype(dtype), SR)
    results = {}
    for name in BACKENDS:
        previous = zx.set_fft_backend(name)
        try:
            results[name] = (
                zx.stft(audio, SCHEME, HANN).values,
                zx.stft(audio, SCHEME, HANN, magnitude=True).values,
                zx.mel_spectrogram(audio, wscheme=SCHEME, wfunc=HANN).values,
                zx.fft(zx.sliding_window(audio, SCHEME, HANN), padding_samples=100).values,
            )
        finally:
            zx.set_fft_backend(previous)
    for a, b in zip(results["scipy"], results["torch"], strict=True):
        assert a.dtype == b.dtype
        assert _rel(a, b) < 1e-5


def test_set_fft_backend_refuses_unknown():
    with pytest.raises(zx.ParameterError):
        zx.set_fft_backend("fftw")
    assert zx.fft_backend() in ("torch", "scipy")


def test_stft_and_fused_mel_match_librosa(signal, fft_lib):
    audio = zx.AudioSamples(signal, SR)
    ref = np.abs(librosa.stft(signal, n_fft=1024, hop_length=256, center=False))
    mag = zx.stft(audio, SCHEME, HANN, magnitude=True).values.T[:, :ref.shape[1]]
    assert _rel(mag, ref) < 1e-5
    mel_ref = librosa.feature.melspectrogram(y=signal, sr=22050, n_fft=1024, hop_length=256,
                                             center=False, n_mels=64, fmin=50, fmax=8000)
    mel = zx.mel_spectrogram(audio, n_mels=64, fmin=50, fmax=8000, wscheme=SCHEME, wfunc=HANN)
    assert mel.dims == ("time", "frequency")
    assert isinstance(mel.zx.dimensions[1].scale, zx.MelScale)
    assert _rel(mel.values.T[:, :mel_ref.shape[1]], mel_ref) < 1e-5


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_fused_mel_equals_mel_of_stft(signal, backend, power, fft_lib):
    audio = backend(zx.AudioSamples(signal, SR))
    fused = zx.mel_spectrogram(audio, n_mels=40, power=power, wscheme=SCHEME)
    plain = zx.mel_spectrogram(zx.stft(audio, SCHEME), n_mels=40, power=power)
    assert fused.dims == plain.dims
    assert isinstance(fused.data, type(plain.data))
    xr.testing.assert_allclose(fused.compute(), plain.compute(), rtol=1e-5, atol=0)
    assert fused.zx.dimensions[0] == plain.zx.dimensions[0]


def test_batched_channels_equal_one_by_one(signal, backend, fft_lib):
    clips = np.stack([signal, signal[::-1].copy(), 0.5 * signal])  # (clip, time)
    batch = backend(zx.AudioSamples(clips.T, SR))  # (time, channel)
    for func in (lambda a: zx.stft(a, SCHEME, HANN, magnitude=True),
                 lambda a: zx.stft(a, SCHEME, HANN),
                 lambda a: zx.mel_spectrogram(a, n_mels=32, wscheme=SCHEME)):
        out = func(batch).compute()
        assert out.dims == ("time", "frequency", "channel")
        for c in range(clips.shape[0]):
            one = func(zx.AudioSamples(clips[c], SR)).values
            np.testing.assert_allclose(out.values[..., c], one, rtol=1e-6,
                                       atol=1e-6 * np.abs(one).max())


@pytest.mark.parametrize("mode", ["complex", "magnitude", "power", "rebin"])
@pytest.mark.parametrize("planes", [True, False])
def test_short_signals_framed_several_to_a_block_equal_one_by_one(mode, planes):
    # stacked short clips are framed and transformed several to a block: each clip's
    # rows must be, bit for bit, those of the clip on its own, in either output layout
    rng = np.random.default_rng(3)
    clips = rng.standard_normal((2000, 37)).astype("f4")  # 37 clips of 2000 samples
    rebin = SparseRebin(rng.random((16, 129)) * (rng.random((16, 129)) < 0.1), 2.0,
                        "f4") if mode == "rebin" else None
    kernel = kernels.FrameKernel(64, 256, np.hanning(256), "f4", mode, rebin,
                                 block_bytes=256 * 4 * 200)  # 6 clips of 31 frames a block
    nf = kernel.n_frames(2000)
    if planes:  # one plane per clip, as run_audio_kernel lays it out
        out = np.moveaxis(np.empty((37, nf, kernel.n_out), kernel.out_dtype), 0, -1)
    else:
        out = np.empty((nf, kernel.n_out, 37), kernel.out_dtype)
    kernel(np.asfortranarray(clips), out=out)
    for c in range(37):
        np.testing.assert_array_equal(out[..., c], kernel(clips[:, c]))


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_fused_rebin_is_the_rebinned_spectrum_bit_for_bit(power, dtype, fft_lib):
    # the fused kernel (coefficients written in columns, no transpose) gives, bit for
    # bit, the sparse product of the spectrum's magnitudes, in full and short blocks
    rng = np.random.default_rng(5)
    signal = rng.standard_normal(20_000).astype(dtype)
    weights = rng.random((24, 257)) * (rng.random((24, 257)) < 0.08)
    mode = "power" if power == 2.0 else "magnitude"
    spectrum = kernels.FrameKernel(128, 512, np.hanning(512), dtype, mode)(signal)
    rebinned = SparseRebin(weights, None if power == 2.0 else power, dtype)(spectrum)
    for block_bytes in (kernels.BLOCK_BYTES, 512 * 8 * 13):  # 153 frames, 13 or 26 a block
        fused = kernels.FrameKernel(128, 512, np.hanning(512), dtype, "rebin",
                                    SparseRebin(weights, power, dtype),
                                    block_bytes=block_bytes)
        np.testing.assert_array_equal(fused(signal), rebinned)


def test_mfcc_of_audio_matches_librosa(signal, backend):
    audio = backend(zx.AudioSamples(signal, SR))
    out = zx.mfcc(audio, n_mfcc=13, wscheme=SCHEME, wfunc=HANN, n_mels=40)
    assert out.dims == ("time", "coefficient")
    mel_ref = librosa.feature.melspectrogram(y=signal, sr=22050, n_fft=1024, hop_length=256,
                                             center=False, n_mels=40)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel_ref), n_mfcc=13)
    got = out.values.T[:, :ref.shape[1]]
    # the dB floor is relative to the whole array's peak: ours has a padded last frame
    # more than librosa's, which is quieter, so the peaks agree
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("power", [None, 1.0, 2.0, 0.5])
def test_sparse_rebin_equals_dense_product(power):
    rng = np.random.default_rng(0)
    weights = np.where(rng.random((12, 100)) < 0.1, rng.random((12, 100)), 0.0)
    x = rng.standard_normal((3, 700, 100)) + 1j * rng.standard_normal((3, 700, 100))
    kernel = SparseRebin(weights, power, np.float64)
    mag = x if power is None else np.abs(x) ** power
    np.testing.assert_allclose(kernel(x), mag @ weights.T, rtol=1e-12)
    assert kernel(x).dtype == (np.complex128 if power is None else np.float64)


def test_materialize_equals_compute(signal):
    lazy = zx.AudioSamples(signal, SR).chunk({"time": 4096})
    spec = zx.stft(lazy, SCHEME, magnitude=True)
    out = zx.materialize(spec, scheduler="threads", num_workers=2)
    assert isinstance(out.data, np.ndarray)
    xr.testing.assert_identical(out, spec.compute())
    plain = zx.stft(zx.AudioSamples(signal, SR), SCHEME, magnitude=True)
    assert zx.materialize(plain) is plain


def test_dask_stft_graph_has_one_task_per_block(signal):
    lazy = zx.AudioSamples(signal, SR).chunk({"time": 8192})
    spec = zx.stft(lazy, SCHEME, magnitude=True, frames_per_block=20)
    layer = spec.data.dask.layers[spec.data.name]
    assert len(layer) == len(spec.data.chunks[0])
    np.testing.assert_allclose(spec.values, zx.stft(zx.AudioSamples(signal, SR), SCHEME,
                                                    magnitude=True).values, rtol=1e-6)


# ----------------------------------------------------------------------- bad requests
def test_requests_too_large_are_refused_before_allocating():
    audio = zx.AudioSamples(np.zeros(1000), zx.SR11025())
    windowed = zx.sliding_window(audio, zx.SR11025().half_lapped())
    with pytest.raises(zx.ParameterError, match="GiB"):
        zx.fft(windowed, padding_samples=10**10)
    with pytest.raises(zx.ParameterError, match="GiB"):
        zx.sliding_window(audio, zx.SR11025() * (10, 10**9))
    with pytest.raises(zx.ParameterError, match="GiB"):
        zx.stft(audio, zx.SR11025() * (10, 10**9))
    with pytest.raises(zx.ParameterError, match="GiB"):
        zx.mel_spectrogram(zx.stft(audio), n_mels=10**6)


@pytest.mark.parametrize("padwith", ["x", None, [1, 2]])
def test_sliding_window_padwith_must_be_a_number(padwith):
    audio = zx.AudioSamples(np.zeros(1000), zx.SR11025())
    with pytest.raises(zx.ParameterError, match="padwith"):
        zx.sliding_window(audio, zx.SR11025().half_lapped(), padwith=padwith)


def test_mel_fmax_above_nyquist_is_refused(signal):
    audio = zx.AudioSamples(signal, SR)
    with pytest.raises(zx.ParameterError, match="Nyquist"):
        zx.mel_spectrogram(audio, fmax=12000, wscheme=SCHEME)
    with pytest.raises(zx.ParameterError, match="Nyquist"):
        zx.mel_spectrogram(zx.stft(audio, SCHEME), fmax=12000)
    zx.mel_spectrogram(zx.stft(audio, SCHEME), fmax=11025)  # Nyquist itself is fine


def test_more_mel_bands_than_bins_warns(signal):
    spec = zx.stft(zx.AudioSamples(signal, SR), SR * (64, 128))
    with pytest.warns(UserWarning, match="empty"):
        zx.mel_spectrogram(spec, n_mels=128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zx.mel_spectrogram(spec, n_mels=16)


def test_wscheme_with_a_spectrum_is_refused(signal):
    spec = zx.stft(zx.AudioSamples(signal, SR), SCHEME)
    with pytest.raises(zx.ParameterError, match="audio"):
        zx.mel_spectrogram(spec, wscheme=SCHEME)


def test_a_process_default_of_threads_caps_workers_none():
    # a pool's worker process runs its task in the main thread: the pool sets 1 there
    try:
        kernels.set_default_threads(1)
        assert kernels.n_workers(None) == 1
        assert kernels.n_workers(3) == 3  # an explicit request still wins
    finally:
        kernels.set_default_threads(None)
    assert kernels.n_workers(None) == max(1, os.cpu_count() or 1)
    with pytest.raises(zx.ParameterError):
        kernels.set_default_threads(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scipy_rfft_into_an_output_is_scipys_rfft(dtype):
    # the kernels' FFT writes scipy's coefficients into their own buffer, bit for bit
    from zounds_xr.spectral.fft_backend import rfft

    previous = zx.set_fft_backend("scipy")
    try:
        frames = np.random.default_rng(1).standard_normal((37, 2048)).astype(dtype)
        out = np.empty((37, 1025), dtype=np.result_type(dtype, np.complex64))
        assert rfft(frames.copy(), out=out) is out
        np.testing.assert_array_equal(out, scipy.fft.rfft(frames, axis=-1))
        np.testing.assert_array_equal(rfft(frames.copy()), out)
        columns = np.empty((1025, 37), dtype=out.dtype)  # each frame's in a column
        assert rfft(frames.copy(), out=columns.T) is not None
        np.testing.assert_array_equal(columns.T, out)
    finally:
        zx.set_fft_backend(previous)
