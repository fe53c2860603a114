"""viz: play (IPython audio), specshow (spectrogram plots), seconds, the rich display."""
import base64
import io

import numpy as np
import pytest
import xarray as xr

import zounds_xr as zx
from zounds_xr import viz

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")
display = pytest.importorskip("IPython.display")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def tone():
    sr = zx.SR11025()
    t = np.arange(int(sr)) / int(sr)
    return zx.AudioSamples((0.5 * np.sin(2 * np.pi * 440 * t)).astype("f4"), sr)


@pytest.fixture
def spec(tone):
    return zx.stft(tone, zx.SR11025().half_lapped(), zx.HanningWindowingFunc())


def geometric(n_frames=20):
    scale = zx.GeometricScale(50, 4000, 0.05, 24)
    data = np.abs(np.random.default_rng(0).normal(size=(n_frames, len(scale)))) + 1e-3
    return zx.ArrayWithUnits(data, [zx.TimeDimension(zx.Milliseconds(10)),
                                    zx.FrequencyDimension(scale)])


def _colorbar(mesh):
    assert mesh.colorbar is not None
    return mesh.colorbar


# ----------------------------------------------------------------------------- specshow
def test_specshow_linear(spec, backend):
    mesh = backend(spec).zx.specshow()
    ax = mesh.axes
    assert ax.get_xlabel() == "Time [s]"
    assert ax.get_ylabel() == "Frequency [Hz]"
    assert ax.get_yscale() == "linear"
    assert _colorbar(mesh).ax.get_ylabel() == "dB"
    lo, hi = mesh.get_clim()
    assert hi == pytest.approx(0.0) and lo == pytest.approx(-80.0)
    # time in seconds: the axis spans the frames' hops, frequency up to Nyquist
    index = spec.xindexes["time"]
    assert ax.get_xlim() == pytest.approx((0.0, index.size * float(index.frequency)))
    assert ax.get_ylim()[1] == pytest.approx(11025 / 2, rel=0.01)
    assert mesh.get_array().shape == (spec.sizes["frequency"], spec.sizes["time"])


def test_specshow_mel_is_log_and_power_db(spec):
    mel = zx.mel_spectrogram(spec, n_mels=32)
    mesh = mel.zx.specshow(power=2.0, top_db=60)
    ax = mesh.axes
    assert ax.get_yscale() == "log"
    assert ax.get_ylim()[0] > 0
    assert mesh.get_clim() == pytest.approx((-60.0, 0.0))
    assert "MelScale" in ax.get_title()
    # the 440 Hz tone is the loudest band
    values = mesh.get_array().reshape(32, -1)
    loudest = int(np.argmax(values.mean(axis=1)))
    band = mel.xindexes["frequency"].scale.bands[loudest]
    assert band.start_hz <= 440 <= band.stop_hz


def test_specshow_geometric_and_options():
    g = geometric()
    g.name = "filters"
    fig, ax = plt.subplots()
    mesh = g.zx.specshow(ax=ax, db=False, colorbar=True, cmap="viridis")
    assert mesh.axes is ax
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "filters (GeometricScale, 24 bands)"
    assert mesh.colorbar.ax.get_ylabel() == "magnitude"
    assert mesh.get_clim()[0] > 0  # magnitudes, not dB
    mesh = g.zx.specshow(yscale="linear", colorbar=False, title="x", vmin=-50, vmax=0)
    assert mesh.axes.get_yscale() == "linear"
    assert mesh.colorbar is None
    assert mesh.get_clim() == (-50, 0)
    assert mesh.axes.get_title() == "x"


def test_specshow_linear_on_log_axis_starts_above_zero(spec):
    ax = spec.zx.specshow(yscale="log").axes
    assert 0 < ax.get_ylim()[0] < float(spec.frequency[1])


def test_specshow_chroma_names_pitch_classes(spec):
    c = zx.chroma(spec, zx.FrequencyBand(50, 5000))
    ax = c.zx.specshow(db=False).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == list(
        zx.ChromaScale.pitch_classes)
    assert ax.get_ylabel() == "Pitch class"


def test_specshow_either_dim_order(spec):
    a = spec.zx.specshow().get_array()
    b = spec.transpose("frequency", "time").zx.specshow().get_array()
    np.testing.assert_array_equal(a, b)


def test_specshow_silence_does_not_fail(spec):
    mesh = (spec * 0).zx.specshow()
    assert np.all(np.isfinite(mesh.get_array()))


@pytest.mark.parametrize("make", [
    lambda tone, spec: tone,                                       # 1-D audio
    lambda tone, spec: zx.mfcc(zx.mel_spectrogram(spec)),          # no frequency axis
    lambda tone, spec: spec.expand_dims(channel=2),                # 3-D
    lambda tone, spec: xr.DataArray(np.zeros((3, 4)), dims=("time", "frequency")),
])
def test_specshow_wrong_dims(tone, spec, make):
    with pytest.raises(zx.ParameterError, match="specshow"):
        viz.specshow(make(tone, spec))


def test_specshow_bad_yscale(spec):
    with pytest.raises(zx.ParameterError, match="yscale"):
        spec.zx.specshow(yscale="loglog")


def test_specshow_png(spec, tmp_path):
    fig, axes = plt.subplots(2, 1, figsize=(6, 6))
    spec.zx.specshow(ax=axes[0])
    zx.mel_spectrogram(spec, n_mels=32).zx.specshow(ax=axes[1], power=2)
    path = tmp_path / "spec.png"
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


# ----------------------------------------------------------------------------- play
def _wav_header(audio):
    raw = base64.b64decode(audio._repr_html_().split("base64,")[1].split('"')[0])
    import soundfile as sf

    info = sf.info(io.BytesIO(raw))
    return info.samplerate, info.channels, info.frames


def test_play_mono(tone, backend):
    audio = backend(tone).zx.play()
    assert isinstance(audio, display.Audio)
    assert _wav_header(audio) == (11025, 1, 11025)


def test_play_stereo_keeps_channels():
    x = zx.AudioSamples(np.stack([np.linspace(-1, 1, 8000)] * 2, axis=1).astype("f4"),
                        zx.SR8000())
    audio = viz.play(x, autoplay=True)
    assert _wav_header(audio) == (8000, 2, 8000)
    assert audio.autoplay
    # channel-first arrays give the same widget
    assert viz.play(x.transpose("channel", "time")).data == audio.data


def test_play_silence_and_normalize():
    silent = zx.AudioSamples(np.zeros(800, "f4"), zx.SR8000())
    assert _wav_header(viz.play(silent)) == (8000, 1, 800)
    loud = zx.AudioSamples(np.full(800, 2.0, "f4"), zx.SR8000())
    viz.play(loud)  # normalised
    with pytest.raises(zx.ParameterError, match="normalize"):
        viz.play(loud, normalize=False)


def test_play_errors(spec):
    with pytest.raises(zx.ParameterError, match="frames"):
        viz.play(zx.spectral_centroid(spec))
    with pytest.raises(zx.ParameterError, match="dims"):
        viz.play(spec)
    with pytest.raises(zx.ParameterError):
        viz.play(xr.DataArray(np.zeros(10), dims="time"))
    with pytest.raises(zx.ParameterError):
        viz.play(np.zeros(10))


# ----------------------------------------------------------------------------- seconds
def test_seconds_coordinate(spec, backend):
    out = viz.seconds(backend(spec))
    index = spec.xindexes["time"]
    np.testing.assert_allclose(out.time.values,
                               np.arange(index.size) * float(index.frequency))
    assert out.time.attrs["units"] == "s"
    assert out.dims == spec.dims and out.chunks == backend(spec).chunks
    assert out.frequency.attrs["units"] == "Hz"
    ax = zx.spectral_centroid(out).plot()[0].axes
    assert ax.get_xlabel() == "Time [s]"


def test_seconds_is_exact_at_44100():
    x = zx.AudioSamples(np.zeros(44100 * 3, "f4"), zx.SR44100())
    s = viz.seconds(x.zx[zx.TimeSlice(zx.Seconds(2), start=zx.Seconds(1))])
    assert s.sizes["time"] == 88200
    assert s.time.values[0] == 1.0 and s.time.values[-1] == pytest.approx(3 - 1 / 44100)


def test_seconds_needs_time_index():
    with pytest.raises(zx.ParameterError, match="TimeIndex"):
        viz.seconds(xr.DataArray(np.zeros(3), dims="time"))


# ----------------------------------------------------------------------------- display
def test_rich_display_of_audio(tone):
    text = tone.zx._repr_html_()
    assert "11025 Hz audio, mono" in text and "<audio" in text


def test_rich_display_of_long_or_lazy_audio_does_not_embed():
    x = zx.AudioSamples(np.zeros(8000 * 61, "f4"), zx.SR8000()).chunk({"time": 8000})
    text = x.zx._repr_html_()
    assert "<audio" not in text and "dask" in text and "zx.play()" in text


def test_rich_display_of_features(spec):
    text = spec.zx._repr_html_()
    assert "TimeIndex(hop=" in text and "<audio" not in text
