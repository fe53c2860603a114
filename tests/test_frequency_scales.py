"""Frequency scales: bands, slicing, persistence, weights and apply."""
import json
import pickle
import warnings

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from zounds_xr.core.errors import ParameterError
from zounds_xr.frequency import (
    BarkScale,
    ChromaScale,
    ExplicitScale,
    FrequencyBand,
    FrequencyScale,
    GeometricScale,
    LinearScale,
    MelScale,
    bark_to_hz,
    frequency_coords,
    hz_to_bark,
    hz_to_mel,
    mel_to_hz,
)
from zounds_xr.testing import assert_allclose
from zounds_xr.timeseries.samplerate import SR44100

SCALES = {
    "linear": LinearScale(FrequencyBand(20, 20000), 10),
    "linear_even": LinearScale(FrequencyBand(0, 1000), 7, always_even=True),
    "rfft": LinearScale.from_rfft(1024, 11025),
    "geometric": GeometricScale(20, 20000, 0.05, 10),
    "mel": MelScale(FrequencyBand(0, 8000), 40),
    "mel_htk": MelScale(FrequencyBand(20, 8000), 40, htk=True),
    "bark": BarkScale(FrequencyBand(20, 5000), 24),
    "chroma": ChromaScale(FrequencyBand(20, 5000)),
    "explicit": ExplicitScale([FrequencyBand(100, 200), FrequencyBand(150, 400)]),
    "explicit_empty": ExplicitScale([]),
}


@pytest.fixture(params=sorted(SCALES))
def any_scale(request):
    return SCALES[request.param]


# the zounds examples ------------------------------------------------------------------
def test_linear_scale_example():
    scale = LinearScale(FrequencyBand(20, 20000), 10)
    np.testing.assert_allclose(scale.Q, np.arange(10) + 0.51001001, rtol=1e-7)
    assert len(scale) == scale.n_bands == 10
    assert scale.start_hz == 20 and scale.stop_hz == 20000
    assert scale.frequency_band == FrequencyBand(20, 20000)
    np.testing.assert_allclose(scale.bandwidths, 1998)


def test_linear_scale_from_sample_rate():
    scale = LinearScale.from_sample_rate(SR44100(), 1024)
    starts = [b.start_hz for b in scale.bands]
    np.testing.assert_allclose(starts, np.fft.rfftfreq(2048, 1 / 44100)[:-1])
    assert scale.stop_hz == 22050


def test_from_sample_rate_needs_a_rate():
    with pytest.raises(ParameterError, match="sample_rate"):
        LinearScale.from_sample_rate(44100, 10)


@pytest.mark.parametrize("n_fft", [2, 7, 8, 255, 1024, 2048, 4096])
@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 1234])
def test_from_rfft_centres_are_the_rfft_frequencies(n_fft, sr):
    scale = LinearScale.from_rfft(n_fft, sr)
    expected = np.fft.rfftfreq(n_fft, 1 / sr)
    assert len(scale) == n_fft // 2 + 1
    np.testing.assert_allclose(scale.center_frequencies, expected, rtol=1e-12)
    assert scale.center_frequencies[0] == 0.0  # exactly: assert_allclose(…, 0) needs it
    np.testing.assert_allclose(scale.bandwidths, sr / n_fft, rtol=1e-12)
    assert scale.bands[0].start_hz == -sr / n_fft / 2


def test_from_rfft_accepts_a_sample_rate_object():
    assert LinearScale.from_rfft(1024, SR44100()) == LinearScale.from_rfft(1024, 44100)


@pytest.mark.parametrize("n_fft, sr", [(0, 100), (1.5, 100), (8, 0), (8, -1), (True, 100)])
def test_from_rfft_validates(n_fft, sr):
    with pytest.raises(ParameterError):
        LinearScale.from_rfft(n_fft, sr)


def test_geometric_scale_example():
    scale = GeometricScale(20, 20000, 0.05, 10)
    assert scale.start_hz == pytest.approx(19.5)
    assert scale.stop_hz == pytest.approx(20500.0)
    np.testing.assert_allclose(scale.Q, 20.0)
    np.testing.assert_allclose(
        list(scale.center_frequencies),
        [20.0, 43.0886938, 92.8317767, 200.0, 430.886938, 928.317767, 2000.0,
         4308.86938, 9283.17767, 20000.0], rtol=1e-7)


@pytest.mark.parametrize("args, name", [
    ((0, 100, 0.1, 10), "start_center_hz"), ((100, 50, 0.1, 10), "stop_center_hz"),
    ((100, 200, 0, 10), "bandwidth_ratio"), ((100, 200, 0.1, 0), "n_bands"),
    ((100, 200, 0.1, 1), "one-band")])
def test_geometric_scale_validates(args, name):
    with pytest.raises(ParameterError, match=name):
        GeometricScale(*args)


@pytest.mark.parametrize("make", [
    lambda: LinearScale((0, 100), 10), lambda: LinearScale(FrequencyBand(0, 100), 0),
    lambda: LinearScale(FrequencyBand(0, 100), 2.0), lambda: MelScale(FrequencyBand(-10, 100), 4),
    lambda: ExplicitScale([(2, 1)]), lambda: ExplicitScale([3])])
def test_constructors_validate(make):
    with pytest.raises(ParameterError):
        make()


# perceptual scales ----------------------------------------------------------------------
def test_mel_conversions_match_reference_values():
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)
    assert float(hz_to_mel(1000.0, htk=True)) == pytest.approx(999.986, abs=1e-3)
    f = np.array([0, 50, 440, 1000, 4000, 16000.0])
    for htk in (False, True):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk=htk), htk=htk), f, atol=1e-9)


def test_bark_conversions_round_trip_and_are_monotone():
    f = np.linspace(0, 20000, 2001)
    z = hz_to_bark(f)
    assert np.all(np.diff(z) > 0)
    np.testing.assert_allclose(bark_to_hz(z), f, atol=1e-6)
    assert float(hz_to_bark(1000.0)) == pytest.approx(8.527, abs=1e-3)


@pytest.mark.parametrize("cls", [MelScale, BarkScale])
def test_triangular_layout(cls):
    scale = cls(FrequencyBand(50, 8000), 20)
    p = scale.points
    assert len(p) == 22
    np.testing.assert_array_equal(scale.band_starts, p[:-2])
    np.testing.assert_array_equal(scale.band_stops, p[2:])
    np.testing.assert_array_equal(scale.center_frequencies, p[1:-1])
    assert p[0] == pytest.approx(50) and p[-1] == pytest.approx(8000)
    units = hz_to_mel(p) if cls is MelScale else hz_to_bark(p)
    np.testing.assert_allclose(np.diff(units), np.diff(units)[0], rtol=1e-9)


def test_mel_centres_match_librosa():
    librosa = pytest.importorskip("librosa")
    scale = MelScale(FrequencyBand(0, 11025), 128)
    np.testing.assert_allclose(scale.center_frequencies,
                               librosa.mel_frequencies(130, fmin=0, fmax=11025)[1:-1])


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax, htk", [
    (22050, 2048, 128, 0.0, None, False),
    (16000, 512, 40, 20.0, 7600.0, True),
    (44100, 1024, 64, 100.0, 16000.0, False),
    (11025, 2048, 96, 0.0, None, True),
])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_mel_weights_equal_librosa(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    librosa = pytest.importorskip("librosa")
    scale = MelScale(FrequencyBand(fmin, sr / 2 if fmax is None else fmax), n_mels, htk=htk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns about empty filters at high n_mels
        expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                       fmax=fmax, htk=htk, norm=norm)
    got = scale.weights(LinearScale.from_rfft(n_fft, sr), norm=norm)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_mel_weights_reject_unknown_norm():
    with pytest.raises(ParameterError, match="norm"):
        MelScale(FrequencyBand(0, 4000), 10).weights(LinearScale.from_rfft(256, 8000), norm=3)


def test_bark_weights_are_unit_peak_triangles_by_default():
    scale = BarkScale(FrequencyBand(20, 5000), 24)
    w = scale.weights(LinearScale.from_rfft(8192, 11025))
    assert w.shape == (24, 4097)
    assert np.all(w >= 0) and w.max() <= 1 + 1e-12 and w.max(axis=1).min() > 0.5
    area = scale.weights(LinearScale.from_rfft(8192, 11025), norm="slaney")
    assert not np.allclose(area, w)


@pytest.mark.parametrize("sr, n_fft", [(22050, 2048), (11025, 1024), (16000, 512),
                                       (44100, 4096), (8000, 255)])
def test_chroma_weights_equal_librosa(sr, n_fft):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0)
    got = ChromaScale(FrequencyBand(0, sr / 2)).weights(LinearScale.from_rfft(n_fft, sr))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_chroma_weights_ignore_bins_outside_the_band():
    lin = LinearScale.from_rfft(2048, 22050)
    w = ChromaScale(FrequencyBand(100, 2000)).weights(lin)
    f = lin.center_frequencies
    assert np.all(w[:, (f < 100) | (f > 2000)] == 0)
    assert np.all(w[:, (f >= 100) & (f <= 2000)].sum(axis=0) > 0)


def test_chroma_maps_a_note_to_its_pitch_class():
    lin = LinearScale.from_rfft(8192, 22050)
    w = ChromaScale(FrequencyBand(20, 8000)).weights(lin, octwidth=None)
    for midi in (57, 60, 64, 69, 71):  # A3, C4, E4, A4, B4
        hz = 440 * 2 ** ((midi - 69) / 12)
        k = int(np.argmin(np.abs(lin.center_frequencies - hz)))
        assert int(np.argmax(w[:, k])) == midi % 12


def test_chroma_layout():
    scale = ChromaScale(FrequencyBand(20, 5000))
    assert scale.pitch_classes == ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A",
                                   "A#", "B")
    assert len(scale) == 12
    assert scale.center_frequencies[9] == pytest.approx(55.0)  # A1
    assert np.all(np.diff(scale.center_frequencies) > 0)
    np.testing.assert_allclose(scale.band_stops[:-1], scale.band_starts[1:])  # contiguous
    assert ChromaScale(FrequencyBand(261.6255653005986, 5000)).center_frequencies[0] == \
        pytest.approx(261.6255653)  # a band starting on C keeps it
    assert ChromaScale(FrequencyBand(0, 100)).center_frequencies[0] == pytest.approx(16.3516, 1e-4)


def test_chroma_rejects_a_window():
    with pytest.raises(ParameterError, match="window"):
        ChromaScale(FrequencyBand(20, 5000)).weights(LinearScale.from_rfft(64, 8000), np.hanning)


# common interface -----------------------------------------------------------------------
def test_arrays_are_consistent(any_scale):
    s = any_scale
    n = len(s)
    for arr in (s.band_starts, s.band_stops, s.center_frequencies, s.bandwidths, s.Q):
        assert isinstance(arr, np.ndarray) and arr.shape == (n,)
    assert [b.start_hz for b in s.bands] == s.band_starts.tolist()
    assert list(s) == s.bands
    np.testing.assert_allclose(s.bandwidths, s.band_stops - s.band_starts)
    with pytest.raises(ValueError):
        s.band_starts[...] = 0  # cached arrays are read-only


def test_frequency_band_spans_the_bands(any_scale):
    if not len(any_scale):
        with pytest.raises(ParameterError, match="empty"):
            _ = any_scale.frequency_band
        return
    band = any_scale.frequency_band
    if isinstance(any_scale, ChromaScale):  # the range folded onto the 12 classes
        assert band == FrequencyBand(20, 5000)
        return
    assert band.start_hz == pytest.approx(any_scale.band_starts.min())
    assert band.stop_hz == pytest.approx(any_scale.band_stops.max())


def test_to_dict_round_trips_exactly_through_json(any_scale):
    d = any_scale.to_dict()
    back = FrequencyScale.from_dict(json.loads(json.dumps(d)))
    assert back == any_scale and hash(back) == hash(any_scale)
    assert type(back) is type(any_scale)
    np.testing.assert_array_equal(back.band_starts, any_scale.band_starts)
    np.testing.assert_array_equal(back.center_frequencies, any_scale.center_frequencies)
    assert FrequencyScale.from_dict(json.dumps(d)) == any_scale


def test_sliced_scales_round_trip_too():
    for scale in (SCALES["rfft"][3:40], SCALES["geometric"][::3], SCALES["mel"][5:9]):
        back = FrequencyScale.from_dict(json.loads(json.dumps(scale.to_dict())))
        assert back == scale
        np.testing.assert_array_equal(back.center_frequencies, scale.center_frequencies)


@pytest.mark.parametrize("d", [{}, {"type": "Nope"}, "[1, 2]", {"type": "LinearScale"}])
def test_from_dict_rejects_garbage(d):
    with pytest.raises(ParameterError):
        FrequencyScale.from_dict(d)


def test_pickle(any_scale):
    _ = any_scale.center_frequencies  # fill the cache: it must not travel
    back = pickle.loads(pickle.dumps(any_scale))
    assert back == any_scale
    assert "_cache" not in any_scale.__getstate__()


def test_equality_is_by_parameters():
    assert LinearScale(FrequencyBand(0, 100), 10) == LinearScale(FrequencyBand(0.0, 100.0), 10)
    assert LinearScale(FrequencyBand(0, 100), 10) != LinearScale(FrequencyBand(0, 100), 11)
    assert LinearScale(FrequencyBand(0, 100), 10) != LinearScale(FrequencyBand(0, 100), 10,
                                                                 always_even=True)
    assert MelScale(FrequencyBand(0, 100), 10) != MelScale(FrequencyBand(0, 100), 10, htk=True)
    # same bands, different kinds
    lin = LinearScale(FrequencyBand(0, 200), 2)
    assert ExplicitScale(lin.bands) != lin
    assert len({lin, LinearScale(FrequencyBand(0, 200), 2)}) == 1
    assert lin != "not a scale"


def test_repr():
    assert repr(LinearScale(FrequencyBand(20, 20000), 10)) == (
        "LinearScale(band=FrequencyBand(start_hz=20.0, stop_hz=20000.0, center=10010.0, "
        "bandwidth=19980.0), n_bands=10)")
    assert "GeometricScale(start_center_hz=20.0" in repr(SCALES["geometric"])
    for s in SCALES.values():
        assert type(s).__name__ in repr(s)


# indexing -------------------------------------------------------------------------------
@pytest.mark.parametrize("i", [0, 3, -1, np.int64(2)])
def test_integer_index_is_a_band(any_scale, i):
    if not -len(any_scale) <= i < len(any_scale):
        with pytest.raises(IndexError):
            any_scale[i]
        return
    band = any_scale[i]
    assert isinstance(band, FrequencyBand)
    assert band == any_scale.bands[int(i)]


def test_integer_index_out_of_range():
    with pytest.raises(IndexError):
        SCALES["linear"][10]


@pytest.mark.parametrize("name, index, kind", [
    ("linear", slice(2, 5), LinearScale),
    ("rfft", slice(0, 100), LinearScale),
    ("linear", slice(0, 10, 2), ExplicitScale),
    ("geometric", slice(2, 9, 3), GeometricScale),
    ("geometric", slice(4, 5), GeometricScale),
    ("geometric", slice(None, None, -1), ExplicitScale),
    ("mel", slice(3, 20), MelScale),
    ("bark", slice(1, 2), BarkScale),
    ("mel", slice(0, 10, 2), ExplicitScale),
    ("chroma", slice(0, 3), ExplicitScale),
    ("linear", np.array([2, 3, 4]), LinearScale),
    ("geometric", [1, 4, 7], GeometricScale),
    ("linear", [1, 5], ExplicitScale),
    ("linear", [5, 1], ExplicitScale),
])
def test_slicing_keeps_the_kind_when_regular(name, index, kind):
    scale = SCALES[name]
    sub = scale[index]
    assert type(sub) is kind
    positions = np.arange(len(scale))[index]
    assert len(sub) == len(positions)
    np.testing.assert_allclose(sub.band_starts, scale.band_starts[positions], rtol=1e-12)
    np.testing.assert_allclose(sub.band_stops, scale.band_stops[positions], rtol=1e-12)
    np.testing.assert_allclose(sub.center_frequencies, scale.center_frequencies[positions],
                               rtol=1e-12)


def test_irregular_selections_keep_the_centres():
    for name in ("mel", "bark", "chroma"):
        scale = SCALES[name]
        sub = scale[[0, 2, 3, 7]]
        assert type(sub) is ExplicitScale
        np.testing.assert_array_equal(sub.center_frequencies,
                                      scale.center_frequencies[[0, 2, 3, 7]])
        assert FrequencyScale.from_dict(json.loads(json.dumps(sub.to_dict()))) == sub
    assert ExplicitScale([(0, 10)], centers=[5.0]) == ExplicitScale([(0, 10)])
    with pytest.raises(ParameterError, match="outside"):
        ExplicitScale([(0, 10)], centers=[11])
    with pytest.raises(ParameterError, match="centers"):
        ExplicitScale([(0, 10)], centers=[1, 2])


def test_slicing_the_whole_scale_or_nothing():
    s = SCALES["geometric"]
    assert s[:] is s
    assert s[5:5] == ExplicitScale([]) and len(s[5:5]) == 0
    mask = np.zeros(10, bool)
    mask[[2, 3]] = True
    assert s[mask] == s[2:4]


def test_slicing_rfft_keeps_the_step_and_zero_centre():
    s = SCALES["rfft"]
    sub = s[0:10]
    assert sub.bandwidth == s.bandwidth
    assert sub.center_frequencies[0] == 0.0
    assert sub.always_even == s.always_even


def test_frequency_band_index_gives_the_overlapping_scale():
    s = LinearScale(FrequencyBand(0, 1000), 10)
    assert s[FrequencyBand(450, 650)] == s[4:7]


# overlapping / get_slice / ensure_overlap_ratio ----------------------------------------
@pytest.mark.parametrize("band, expected", [
    (FrequencyBand(450, 650), [4, 5, 6]),
    (FrequencyBand(400, 500), [4]),          # edges: touching is not overlap
    (FrequencyBand(-100, 0), []),
    (FrequencyBand(-100, 0.001), [0]),
    (FrequencyBand(999, 5000), [9]),
    (FrequencyBand(1000, 5000), []),
])
def test_overlapping_is_half_open(band, expected):
    s = LinearScale(FrequencyBand(0, 1000), 10)
    assert s.overlapping(band).tolist() == expected
    generic = ExplicitScale(s.bands)  # the generic scan agrees with the linear shortcut
    assert generic.overlapping(band).tolist() == expected


def test_get_slice():
    s = LinearScale(FrequencyBand(0, 1000), 10)
    assert s.get_slice(FrequencyBand(450, 650)) == slice(4, 7)
    assert s.get_slice(FrequencyBand(5000, 6000)) == slice(0, 0)
    even = LinearScale(FrequencyBand(0, 1000), 10, always_even=True)
    assert even.get_slice(FrequencyBand(450, 650)) == slice(4, 8)
    assert even.get_slice(FrequencyBand(950, 1000)) == slice(8, 10)  # grows downwards at the top
    assert even.get_slice(FrequencyBand(450, 550)) == slice(4, 6)


def test_get_slice_of_a_non_contiguous_explicit_scale_spans_first_to_last():
    s = ExplicitScale([(0, 10), (100, 200), (5, 20)])
    assert s.overlapping(FrequencyBand(8, 9)).tolist() == [0, 2]
    assert s.get_slice(FrequencyBand(8, 9)) == slice(0, 3)


def test_ensure_overlap_ratio():
    GeometricScale(100, 5000, bandwidth_ratio=0.089, n_bands=100).ensure_overlap_ratio(0.5)
    with pytest.raises(ParameterError, match=r"bands 0 and 1 .*required_ratio=0.5"):
        LinearScale(FrequencyBand(0, 1000), 10).ensure_overlap_ratio(0.5)
    with pytest.raises(ValueError):  # ParameterError is a ValueError (zounds: AssertionError)
        GeometricScale(100, 5000, bandwidth_ratio=0.01, n_bands=10).ensure_overlap_ratio()
    LinearScale(FrequencyBand(0, 1000), 10).ensure_overlap_ratio(0)
    ExplicitScale([(0, 10)]).ensure_overlap_ratio(0.9)  # a single band has no pairs
    with pytest.raises(ParameterError, match="required_ratio"):
        SCALES["mel"].ensure_overlap_ratio("half")


def test_ensure_overlap_ratio_names_the_first_bad_pair():
    s = ExplicitScale([(0, 10), (5, 15), (14, 30)])
    with pytest.raises(ParameterError, match="bands 1 and 2"):
        s.ensure_overlap_ratio(0.5)


# weights --------------------------------------------------------------------------------
def test_generic_weights_are_windows_over_the_overlapping_bins():
    lin = LinearScale(FrequencyBand(0, 1000), 100)
    scale = ExplicitScale([(100, 150), (500, 560), (2000, 3000)])
    w = scale.weights(lin)
    assert w.shape == (3, 100)
    np.testing.assert_array_equal(np.flatnonzero(w[0]), np.arange(10, 15))
    assert w[0].sum() == 5 and w[1].sum() == 6 and w[2].sum() == 0
    hann = scale.weights(lin, np.hanning)
    np.testing.assert_allclose(hann[1, 50:56], np.hanning(6))


def test_weights_with_a_windowing_func():
    from zounds_xr.spectral.windowing import HanningWindowingFunc, IdentityWindowingFunc

    lin = LinearScale.from_rfft(512, 8000)
    scale = GeometricScale(100, 3000, 0.1, 20)
    np.testing.assert_allclose(scale.weights(lin, HanningWindowingFunc()),
                               scale.weights(lin, np.hanning))
    np.testing.assert_array_equal(scale.weights(lin, IdentityWindowingFunc()), scale.weights(lin))


def test_weights_are_cached_and_read_only():
    lin = LinearScale.from_rfft(512, 8000)
    scale = GeometricScale(100, 3000, 0.1, 20)
    a = scale.weights(lin, np.hanning)
    assert scale.weights(lin, np.hanning) is a
    assert GeometricScale(100, 3000, 0.1, 20).weights(lin, np.hanning) is a  # keyed on params
    assert not a.flags.writeable
    unhashable = [np.hanning]
    w = scale.weights(lin, lambda n, _w=unhashable: _w[0](n))
    np.testing.assert_allclose(w, a)


def test_weights_validate():
    with pytest.raises(ParameterError, match="linear_scale"):
        SCALES["geometric"].weights(np.arange(10))
    with pytest.raises(ParameterError, match="window"):
        SCALES["geometric"].weights(SCALES["rfft"], "hann")
    with pytest.raises(ParameterError, match="shape"):
        SCALES["geometric"].weights(SCALES["rfft"], lambda n: np.ones(n + 1))


def test_linear_onto_coarser_linear_sums_bins():
    fine = LinearScale(FrequencyBand(0, 400), 4)
    np.testing.assert_array_equal(LinearScale(FrequencyBand(0, 400), 2).weights(fine),
                                  [[1, 1, 0, 0], [0, 0, 1, 1]])


# apply ------------------------------------------------------------------------------------
def _spectrum(rng, n_fft=1024, sr=11025, frames=20):
    lin = LinearScale.from_rfft(n_fft, sr)
    data = np.abs(rng.normal(size=(frames, len(lin))))
    return xr.DataArray(data, dims=("time", "frequency"), name="mag", attrs={"units": "x"},
                        coords=xr.Coordinates({"time": np.arange(frames)}).merge(
                            frequency_coords(lin)).coords)


@pytest.mark.parametrize("name", ["geometric", "mel", "bark", "chroma", "explicit", "linear"])
def test_apply_rebins(rng, backend, name):
    scale = SCALES[name]
    spec = _spectrum(rng)
    x = backend(spec)
    out = scale.apply(x)
    assert isinstance(out.data, dsa.Array) == isinstance(x.data, dsa.Array)
    values = spec.values @ scale.weights(spec.xindexes["frequency"].scale).T
    expected = (xr.DataArray(values, dims=("time", "frequency"), name="mag",
                             attrs={"units": "x"})
                .assign_coords(spec.drop_vars("frequency").coords)
                .assign_coords(frequency_coords(scale)))
    assert_allclose(out.compute(), expected, rtol=1e-10)


def test_apply_is_lazy_on_dask_chunked_along_frequency(rng):
    spec = _spectrum(rng)
    lazy = spec.chunk({"time": 5, "frequency": 100})
    out = SCALES["mel"].apply(lazy, norm=None)
    assert isinstance(out.data, dsa.Array)
    assert_allclose(out.compute(), SCALES["mel"].apply(spec, norm=None))


def test_apply_keeps_dim_order_and_other_dims(rng):
    spec = _spectrum(rng).expand_dims(channel=2).transpose("frequency", "channel", "time")
    out = SCALES["geometric"].apply(spec, np.hanning)
    assert out.dims == ("frequency", "channel", "time")
    assert out.sizes == {"frequency": 10, "channel": 2, "time": 20}


def test_apply_dtype_and_complex(rng):
    spec = _spectrum(rng)
    assert SCALES["geometric"].apply(spec.astype(np.float32)).dtype == np.float32
    complex_spec = spec * (1 + 1j)
    out = SCALES["geometric"].apply(complex_spec)
    assert np.iscomplexobj(out.values)
    assert_allclose(out.real, SCALES["geometric"].apply(spec))


def test_apply_passes_options_to_weights(rng):
    spec = _spectrum(rng)
    a = SCALES["mel"].apply(spec)
    b = SCALES["mel"].apply(spec, norm=None)
    assert not np.allclose(a.values, b.values)


def test_apply_validates(rng):
    spec = _spectrum(rng)
    with pytest.raises(ParameterError, match="DataArray"):
        SCALES["mel"].apply(spec.values)
    with pytest.raises(ParameterError, match="FrequencyIndex on .freq."):
        SCALES["mel"].apply(spec, dim="freq")
    with pytest.raises(ParameterError, match="FrequencyIndex"):
        SCALES["mel"].apply(spec.drop_indexes("frequency"))
    fa = xr.DataArray(np.zeros(6), dims="frequency", coords=frequency_coords(
        ExplicitScale([(0, 100), (100, 300)]), slices=[slice(0, 2), slice(2, 6)]))
    with pytest.raises(ParameterError, match="groups coefficients"):
        SCALES["mel"].apply(fa)


# properties -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(start=st.floats(0, 5000), width=st.floats(1, 20000), n=st.integers(1, 300),
       i=st.integers(0, 299), j=st.integers(1, 300))
def test_linear_slices_stay_linear_with_the_same_bands(start, width, n, i, j):
    scale = LinearScale(FrequencyBand(start, start + width), n)
    i, j = min(i, n - 1), min(max(j, i + 1), n)
    sub = scale[i:j]
    assert isinstance(sub, LinearScale) or (i == 0 and j == n)
    np.testing.assert_allclose(sub.band_starts, scale.band_starts[i:j], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sub.band_stops, scale.band_stops[i:j], rtol=1e-12, atol=1e-9)
    assert FrequencyScale.from_dict(json.loads(json.dumps(sub.to_dict()))) == sub
