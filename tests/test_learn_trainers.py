"""Trainers on CPU with tiny networks: losses go down, checkpoints are written."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import zounds_xr as zx  # noqa: E402
from zounds_xr.learn import (  # noqa: E402
    SupervisedTrainer,
    TripletEmbeddingTrainer,
    WassersteinGanTrainer,
)


def test_supervised_trainer_regression_with_holdout_and_checkpoints(rng, tmp_path):
    torch.manual_seed(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    w = np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32)
    y = x @ w + 0.01 * rng.normal(size=(256, 1)).astype(np.float32)
    model = torch.nn.Linear(4, 1)
    trainer = SupervisedTrainer(model, torch.nn.MSELoss(),
                                lambda p: torch.optim.SGD(p, lr=0.05), epochs=6, batch_size=32,
                                holdout_percent=0.25, checkpoint_epochs=2,
                                checkpoint_dir=tmp_path / "ckpt", seed=0)
    trained = trainer.train(x, y)
    assert trained is model
    train, hold = trainer.history["train"], trainer.history["holdout"]
    assert len(train) == len(hold) == 6
    assert train[-1] < 0.05 * train[0] and hold[-1] < 0.05 * hold[0]
    assert [p.split("/")[-1] for p in trainer.checkpoints] == [
        "epoch_0002.pt", "epoch_0004.pt", "epoch_0006.pt"]
    state = torch.load(trainer.checkpoints[-1], weights_only=True)
    torch.testing.assert_close(state["model"]["weight"], model.weight.detach())


def test_supervised_trainer_autoencoder_dict_and_dataarray(rng):
    torch.manual_seed(0)
    data = zx.ArrayWithUnits(rng.normal(size=(128, 6)), [zx.TimeDimension(zx.Milliseconds(10)),
                                                        zx.IdentityDimension()])
    model = torch.nn.Sequential(torch.nn.Linear(6, 6))
    seen = []
    trainer = SupervisedTrainer(model, torch.nn.MSELoss(), torch.optim.Adam(model.parameters(),
                                                                            lr=0.02),
                                epochs=5, batch_size=16,
                                data_preprocessor=lambda b: b * 1.0,
                                on_epoch_end=lambda epoch, losses: seen.append(epoch))
    trainer.train({"data": data})
    assert seen == [0, 1, 2, 3, 4]
    assert trainer.history["train"][-1] < 0.5 * trainer.history["train"][0]


class Embedder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 3, 8))

    def forward(self, x):
        return self.net(x)


def test_triplet_embedding_trainer(rng):
    torch.manual_seed(0)
    # 256 "sounds", each a constant random pattern over 8 frames plus noise: windows of
    # the same sound (anchor, shifted positive) are alike, other sounds differ
    patterns = rng.normal(size=(256, 1, 3))
    data = (patterns + 0.5 * rng.normal(size=(256, 8, 3))).astype(np.float32)
    net = Embedder()
    trainer = TripletEmbeddingTrainer(net, epochs=8, batch_size=32, anchor_slice=slice(2, 6),
                                      seed=0, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer.train(data)
    losses = trainer.history["triplet"]
    assert len(losses) == 8 and np.mean(losses[-2:]) < 0.6 * losses[0]
    out = net(torch.from_numpy(data[:4, 2:6]))
    assert out.shape == (4, 8)


def test_triplet_custom_deformation(rng):
    torch.manual_seed(0)
    data = rng.normal(size=(64, 6, 2)).astype(np.float32)
    calls = []

    def add_noise(anchor, wide):
        calls.append(anchor.shape)
        return anchor + 0.01 * torch.randn_like(anchor)

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 4))
    trainer = TripletEmbeddingTrainer(net, epochs=6, batch_size=16, anchor_slice=slice(1, 5),
                                      deformations=[add_noise], seed=1,
                                      optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer.train(data)
    assert calls and calls[0] == (16, 4, 2)
    assert trainer.history["triplet"][-1] < trainer.history["triplet"][0]


class GanPair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
                                             torch.nn.Linear(16, 2))
        self.discriminator = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(),
                                                 torch.nn.Linear(32, 1))


def test_wasserstein_gan_trainer_moves_generator_to_data(rng, tmp_path):
    torch.manual_seed(0)
    real = (rng.normal(size=(512, 2)) * 0.3 + np.array([3.0, -2.0])).astype(np.float32)
    pair = GanPair()
    trainer = WassersteinGanTrainer(
        pair, latent_dimension=(2,), n_critic_iterations=3, epochs=12, batch_size=64,
        debug_gradient=True, seed=0, checkpoint_dir=tmp_path, checkpoint_epochs=6,
        generator_optimizer=lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.5, 0.9)),
        critic_optimizer=lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.5, 0.9)),
        preprocess_minibatch=lambda epoch, batch: batch)
    before = np.linalg.norm(trainer.generate(512).numpy().mean(0) - real.mean(0))
    trainer.train(real)
    after = np.linalg.norm(trainer.generate(512).numpy().mean(0) - real.mean(0))
    assert after < 0.5 * before
    w = trainer.history["wasserstein"]
    assert len(w) == 12 and np.mean(w[-3:]) < np.mean(w[:3])
    assert trainer.history["critic_gradient"][0] > 0
    assert len(trainer.checkpoints) == 2
    state = torch.load(trainer.checkpoints[0], weights_only=True)
    assert set(state) == {"generator", "discriminator"}


def test_trainer_parameter_errors():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(zx.ParameterError):
        SupervisedTrainer(net, torch.nn.MSELoss(), None, epochs=0, batch_size=1)
    with pytest.raises(zx.ParameterError):
        SupervisedTrainer(net, torch.nn.MSELoss(), None, epochs=1, batch_size=1,
                          holdout_percent=1.5)
    with pytest.raises(zx.ParameterError):
        TripletEmbeddingTrainer(net, 1, 1, anchor_slice=(0, 2))
    with pytest.raises(zx.ParameterError):
        WassersteinGanTrainer(net, (2,), 1, 1, 1)
