"""Torch modules and the pure functions behind them (CPU)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import FilterBank, PerceptualLoss, SincLayer  # noqa: E402
from zounds_xr.learn import functional as Fz  # noqa: E402

SR = zx.SR11025()


@pytest.fixture
def scale():
    return zx.GeometricScale(100, 4000, 0.1, 8)


def tone(hz, n=2048, sr=11025):
    return np.sin(2 * np.pi * hz * np.arange(n) / sr)


def test_morlet_matches_definition():
    w, s, m = 5.0, 1.0, 64
    x = np.linspace(-2 * np.pi, 2 * np.pi, m)
    expected = np.pi ** -0.25 * (np.exp(1j * w * x) - np.exp(-0.5 * w ** 2)) * np.exp(-0.5 * x ** 2)
    np.testing.assert_allclose(Fz.morlet(m, w, s), expected)


def test_morlet_filter_bank_peaks_at_centres(scale):
    bank = Fz.morlet_filter_bank(SR, 512, scale, 0.5).values
    assert bank.shape == (8, 512)
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1, atol=1e-6)
    freqs = np.fft.fftfreq(4096, 1 / 11025)
    peaks = np.abs(freqs[np.argmax(np.abs(np.fft.fft(bank, 4096, axis=1)), axis=1)])
    np.testing.assert_allclose(peaks, scale.center_frequencies, rtol=0.05, atol=10)


def test_one_morlet_design_for_the_module_and_the_function(scale):
    # learn.functional re-exports the spectral design; the module holds its output
    assert Fz.morlet_filter_bank is zx.morlet_filter_bank
    for normalize in (True, False):
        bank = zx.morlet_filter_bank(SR, 255, scale, [0.2, 0.3, 0.4, 0.5, 0.5, 0.4, 0.3, 0.2],
                                     normalize=normalize)
        fb = FilterBank(SR, 255, scale, [0.2, 0.3, 0.4, 0.5, 0.5, 0.4, 0.3, 0.2],
                        normalize_filters=normalize, a_weighting=False)
        assert fb.filters.dtype == torch.get_default_dtype()
        np.testing.assert_allclose(fb.filters.double().numpy(), bank.values, rtol=1e-6,
                                   atol=1e-7 * float(np.abs(bank.values).max()))
    weighted = FilterBank(SR, 255, scale, 0.5, a_weighting=True).filters.double().numpy()
    expected = zx.morlet_filter_bank(SR, 255, scale, 0.5).values * \
        Fz.a_weighting_gain(scale.center_frequencies)[:, None]
    np.testing.assert_allclose(weighted, expected, rtol=1e-6, atol=1e-7)


def test_a_weighting_iec_values():
    f = 1000 * 10 ** (np.array([-15, -12, -9, -6, -3, 0, 3, 6, 9, 12]) / 10)
    db = 20 * np.log10(Fz.a_weighting_gain(f))
    expected = [-39.4, -26.2, -16.1, -8.6, -3.2, 0.0, 1.2, 1.0, -1.1, -6.6]
    np.testing.assert_allclose(db, expected, atol=0.1)


def test_filter_bank_shapes_and_selectivity(scale):
    fb = FilterBank(SR, 255, scale, 0.5, normalize_filters=True, a_weighting=False)
    x = torch.tensor(np.stack([tone(scale.center_frequencies[2]),
                               tone(scale.center_frequencies[6])]), dtype=torch.float32)
    y = fb(x)
    assert y.shape == (2, 8, 2048)
    energy = (y[:, :, 300:-300] ** 2).mean(-1)
    assert int(energy[0].argmax()) == 2
    assert int(energy[1].argmax()) == 6
    assert fb(x[0]).shape == (1, 8, 2048)
    assert fb(x[:, None, :]).shape == (2, 8, 2048)
    assert "filters" in dict(fb.named_buffers())


def test_filter_bank_a_weighting_scales_filters(scale):
    plain = FilterBank(SR, 128, scale, 0.5, a_weighting=False).filters
    weighted = FilterBank(SR, 128, scale, 0.5, a_weighting=True).filters
    ratio = weighted.norm(dim=1) / plain.norm(dim=1)
    np.testing.assert_allclose(ratio.numpy(), Fz.a_weighting_gain(scale.center_frequencies),
                               rtol=1e-5)


def test_filter_bank_bad_input_shape(scale):
    fb = FilterBank(SR, 64, scale, 0.5)
    with pytest.raises(zx.ParameterError):
        fb(torch.zeros(2, 3, 100))


def test_sinc_layer_shapes_gradients_and_passband(scale):
    layer = SincLayer(scale, 101, SR)
    low, high = layer.cutoffs()
    np.testing.assert_allclose(low.detach().numpy(), scale.band_starts, rtol=1e-5)
    np.testing.assert_allclose(high.detach().numpy(), scale.band_stops, rtol=1e-5)
    x = torch.tensor(tone(scale.center_frequencies[5])[None], dtype=torch.float32)
    y = layer(x)
    assert y.shape == (1, 8, 2048)
    y.pow(2).mean().backward()
    assert layer.low_hz.grad is not None and torch.all(torch.isfinite(layer.low_hz.grad))
    assert layer.band_hz.grad is not None and layer.band_hz.grad.abs().sum() > 0
    # a wide pass band has ~unit gain at its centre
    wide = SincLayer(zx.LinearScale(zx.FrequencyBand(1000, 3000), 1), 201, SR)
    out = wide(torch.tensor(tone(2000, 4096)[None], dtype=torch.float32))[0, 0, 500:-500]
    assert abs(float(out.detach().abs().max()) - 1) < 0.05


def test_sinc_layer_learns_cutoffs():
    torch.manual_seed(0)
    teacher = SincLayer(zx.LinearScale(zx.FrequencyBand(800, 1400), 1), 101, SR)
    student = SincLayer(zx.LinearScale(zx.FrequencyBand(500, 1000), 1), 101, SR)
    x = torch.randn(2, 1024)
    with torch.no_grad():
        target = teacher(x)
    opt = torch.optim.Adam(student.parameters(), lr=10.0)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(student(x), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.2 * losses[0]
    low, high = student.cutoffs()
    assert float(low.detach()) > 600 and float(high.detach()) > 1150


def test_perceptual_loss(scale):
    loss = PerceptualLoss(scale, SR, basis_size=128, lap=2)
    rng = np.random.default_rng(0)
    a = torch.tensor(np.stack([tone(300), tone(1200)]), dtype=torch.float32)
    noise = torch.tensor(rng.normal(size=(2, 2048)), dtype=torch.float32)
    assert float(loss(a, a)) == pytest.approx(0, abs=1e-5)
    assert float(loss(a, noise)) > 0.05
    b = a.clone().requires_grad_(True)
    value = loss(b, torch.flip(a, [0]))
    value.backward()
    assert b.grad is not None and b.grad.abs().sum() > 0
    feats = loss.features(a)
    assert feats.shape[:2] == (2, 8)
    mse = PerceptualLoss(scale, SR, basis_size=128, cosine_similarity=False,
                         frequency_weighting=Fz.a_weighting_gain)
    assert float(mse(a, noise)) > 0
    assert mse.weights.shape == (8,)
    with pytest.raises(zx.ParameterError):
        loss(a, a[:, :100])


def test_modules_follow_the_device(scale):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        fb = FilterBank(SR, 64, scale, 0.5).to(device)
        sinc = SincLayer(scale, 65, SR).to(device)
        x = torch.zeros(1, 256, device=device)
        assert fb(x).device.type == device
        assert sinc(x).device.type == device
