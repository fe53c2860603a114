"""Trainers for torch networks: supervised, triplet embedding and Wasserstein GAN.

Every trainer has ``train(data, ...) -> network``, keeps a per-epoch loss ``history``,
and, given ``checkpoint_dir``, writes the networks' ``state_dict`` every
``checkpoint_epochs`` epochs to ``checkpoint_dir/epoch_<n>.pt`` (load with
``torch.load(path, weights_only=True)``). Data may be numpy arrays, DataArrays or
tensors; training runs on ``device`` (default: where the network's parameters are).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import os
from collections.abc import Callable

import numpy as np

from ..core.optional import optional_import
from ..core.validation import positive_int
from ..core.errors import ParameterError

if TYPE_CHECKING:  # type checkers read torch; at run time it is imported with a hint
    import torch
    import torch.nn.functional as F  # noqa: N812
else:
    torch = optional_import("torch")
    F = torch.nn.functional

__all__ = ["Trainer", "SupervisedTrainer", "TripletEmbeddingTrainer", "WassersteinGanTrainer"]


def _tensor(x, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    else:
        values = getattr(x, "values", x)  # DataArray -> numpy
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(values)))
    if t.dtype == torch.float64:
        t = t.float()
    return t.to(device) if device is not None else t


def _device_of(module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _make_optimizer(optimizer, parameters, default_lr=1e-3):
    """Return an optimizer from an instance, a factory ``f(params)`` or ``None`` (Adam)."""
    if optimizer is None:
        return torch.optim.Adam(parameters, lr=default_lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        return optimizer(parameters)
    raise ParameterError(f"optimizer must be an Optimizer or a factory, got {optimizer!r}")


class Trainer:
    """Shared epochs/batches/checkpoint machinery of the trainers.

    Parameters
    ----------
    epochs : int > 0
        Passes over the training set.
    batch_size : int > 0
        Examples per optimisation step (batches are drawn in a seeded random order).
    checkpoint_epochs : int > 0
        Save a checkpoint every that many epochs (when ``checkpoint_dir`` is set).
    checkpoint_dir : str or os.PathLike, optional
        Where ``state_dict`` checkpoints go (``self.checkpoints`` lists them).
    device : str or torch.device, optional
        Where training runs (default: the network's device).
    seed : int, optional
        Seed of the batch order.
    on_epoch_end : callable, optional
        ``f(epoch, losses)`` after each epoch (the last value of each loss by name).

    See Also
    --------
    SupervisedTrainer, TripletEmbeddingTrainer, WassersteinGanTrainer
    """

    def __init__(self, epochs: int, batch_size: int, checkpoint_epochs: int = 1,
                 checkpoint_dir=None, device=None, seed=None,
                 on_epoch_end: Callable | None = None):
        self.epochs = positive_int(epochs, "epochs")
        self.batch_size = positive_int(batch_size, "batch_size")
        self.checkpoint_epochs = max(int(checkpoint_epochs), 1)
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.device = device
        self.seed = seed
        self.on_epoch_end = on_epoch_end
        self.history: dict[str, list[float]] = {}
        self.checkpoints: list[str] = []
        self._generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None

    def _batches(self, n: int):
        order = torch.randperm(n, generator=self._generator)
        for s in range(0, n, self.batch_size):
            yield order[s:s + self.batch_size]

    def _modules_to_save(self) -> dict:
        raise NotImplementedError

    def _end_epoch(self, epoch: int, **losses):
        for key, value in losses.items():
            self.history.setdefault(key, []).append(float(value))
        if self.checkpoint_dir is not None and (epoch + 1) % self.checkpoint_epochs == 0:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
            path = os.path.join(self.checkpoint_dir, f"epoch_{epoch + 1:04d}.pt")
            state = {name: {k: v.detach().cpu() for k, v in m.state_dict().items()}
                     for name, m in self._modules_to_save().items()}
            torch.save(state, path)
            self.checkpoints.append(path)
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch, {k: v[-1] for k, v in self.history.items()})


class SupervisedTrainer(Trainer):
    """Minimise ``loss(model(data), labels)`` by minibatch gradient descent.

    Parameters
    ----------
    model : torch.nn.Module
    loss : callable
        e.g. ``torch.nn.MSELoss()``.
    optimizer : torch.optim.Optimizer or callable
        An optimizer, or a factory ``f(parameters) -> Optimizer``.
    epochs, batch_size : int
    holdout_percent : float
        Fraction of the examples kept out of training; their loss is recorded in
        ``history["holdout"]`` every epoch.
    data_preprocessor, label_preprocessor : callable
        Applied to each minibatch (tensors) before the forward pass.
    checkpoint_epochs : int
        Save a checkpoint every this many epochs (with ``checkpoint_dir``).
    checkpoint_dir : path, optional
        Where checkpoints go (none are saved without it).
    device : str or torch.device, optional
        Where training runs (the model's device by default).
    seed : int, optional
        Seeds the shuffling and initial noise, for a reproducible run.
    on_epoch_end : callable, optional
        ``f(epoch, history)`` after every epoch.

    Raises
    ------
    ParameterError
        When a count is not a positive integer or a parameter is out of range.

    Notes
    -----
    ``train(data, labels=None)``: without labels the data are the targets (an
    autoencoder). ``data`` may also be a dict with ``"data"`` and ``"labels"`` (zounds).
    ``history["train"]``: mean training loss per epoch.
    """

    def __init__(self, model, loss, optimizer, epochs, batch_size, holdout_percent=0.0,
                 data_preprocessor=lambda x: x, label_preprocessor=lambda x: x,
                 checkpoint_epochs=1, checkpoint_dir=None, device=None, seed=None,
                 on_epoch_end=None):
        super().__init__(epochs, batch_size, checkpoint_epochs, checkpoint_dir, device, seed,
                         on_epoch_end)
        if not 0 <= float(holdout_percent) < 1:
            raise ParameterError(f"holdout_percent must be in [0, 1), got {holdout_percent!r}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.holdout_percent = float(holdout_percent)
        self.data_preprocessor = data_preprocessor
        self.label_preprocessor = label_preprocessor

    def _modules_to_save(self):
        return {"model": self.model}

    def train(self, data, labels=None):
        """Train the model; ``history["train"]`` gets the mean loss of each epoch.

        Parameters
        ----------
        data : array_like or torch.Tensor [shape=(n, ...)], or dict
            Inputs (float64 becomes float32); a dict ``{"data", "labels"}`` is accepted.
        labels : array_like or torch.Tensor [shape=(n, ...)], optional
            Targets; ``None`` trains an autoencoder (the targets are the inputs).

        Returns
        -------
        torch.nn.Module
            The trained model.
        """
        if isinstance(data, dict):
            data, labels = data["data"], data.get("labels")
        device = self.device or _device_of(self.model)
        model = self.model.to(device)
        x = _tensor(data)
        y = x if labels is None else _tensor(labels)
        if y.shape[0] != x.shape[0]:
            raise ParameterError(f"{x.shape[0]} examples but {y.shape[0]} labels")
        n_hold = int(round(x.shape[0] * self.holdout_percent))
        if n_hold:
            order = torch.randperm(x.shape[0], generator=self._generator)
            hold, keep = order[:n_hold], order[n_hold:]
            x_hold, y_hold = x[hold], y[hold]
            x, y = x[keep], y[keep]
        optimizer = _make_optimizer(self.optimizer, model.parameters())
        for epoch in range(self.epochs):
            model.train()
            total, count = 0.0, 0
            for idx in self._batches(x.shape[0]):
                xb = self.data_preprocessor(x[idx].to(device))
                yb = self.label_preprocessor(y[idx].to(device))
                optimizer.zero_grad()
                loss = self.loss(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            losses = {"train": total / count}
            if n_hold:
                model.eval()
                with torch.no_grad():
                    losses["holdout"] = float(self.loss(
                        model(self.data_preprocessor(x_hold.to(device))),
                        self.label_preprocessor(y_hold.to(device))))
            self._end_epoch(epoch, **losses)
        model.eval()
        return model


def _shift_deformation(anchor_slice: slice):
    """Positive examples taken from a randomly shifted window of the wider example."""

    def deform(anchor, wide):
        length = anchor.shape[1]
        start = anchor_slice.start or 0
        max_start = wide.shape[1] - length
        if max_start <= 0:
            return anchor
        shifts = torch.randint(0, max_start + 1, (wide.shape[0],), device=wide.device)
        shifts = torch.where(shifts == start, (shifts + 1) % (max_start + 1), shifts)
        positions = shifts[:, None] + torch.arange(length, device=wide.device)[None, :]
        index = positions.reshape(*positions.shape, *([1] * (wide.ndim - 2)))
        return torch.gather(wide, 1, index.expand(-1, -1, *wide.shape[2:]))

    return deform


class TripletEmbeddingTrainer(Trainer):
    """Learn an embedding with the triplet loss (Jansen et al., 2018, arXiv:1711.02209).

    Each minibatch holds "wide" examples ``(batch, time, features...)``; the anchors are
    ``wide[:, anchor_slice]``, a positive is derived from each anchor by a randomly
    chosen deformation (default: a temporally adjacent window of the wide example),
    and the negatives are the anchors of other examples of the batch. The loss is
    ``mean(relu(|a - p|² - |a - n|² + margin))`` on L2-normalised embeddings.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(batch, anchor_time, features...)`` to ``(batch, dim)``.
    epochs, batch_size : int
    anchor_slice : slice
        Which part of the time axis of a wide example is the anchor.
    deformations : sequence of callable, optional
        ``f(anchor, wide) -> positive``.
    margin : float
        The triplet loss's margin.
    optimizer : Optimizer or factory, optional (Adam, lr=1e-3)
        How the network's parameters are updated.
    checkpoint_epochs : int
        Save a checkpoint every this many epochs (with ``checkpoint_dir``).
    checkpoint_dir : path, optional
        Where checkpoints go (none are saved without it).
    device : str or torch.device, optional
        Where training runs (the model's device by default).
    seed : int, optional
        Seeds the shuffling and initial noise, for a reproducible run.
    on_epoch_end : callable, optional
        ``f(epoch, history)`` after every epoch.

    Raises
    ------
    ParameterError
        When a count is not a positive integer or a parameter is out of range.
    """

    def __init__(self, network, epochs, batch_size, anchor_slice, deformations=None,
                 checkpoint_epochs=1, margin=0.25, optimizer=None, checkpoint_dir=None,
                 device=None, seed=None, on_epoch_end=None):
        super().__init__(epochs, batch_size, checkpoint_epochs, checkpoint_dir, device, seed,
                         on_epoch_end)
        if not isinstance(anchor_slice, slice):
            raise ParameterError(f"anchor_slice must be a slice, got {anchor_slice!r}")
        self.network = network
        self.anchor_slice = anchor_slice
        self.deformations = list(deformations) if deformations else [
            _shift_deformation(anchor_slice)]
        self.margin = float(margin)
        self.optimizer = optimizer

    def _modules_to_save(self):
        return {"network": self.network}

    def _embed(self, x):
        return F.normalize(self.network(x).reshape(x.shape[0], -1), dim=-1)

    def triplet_loss(self, wide):
        """Return the triplet loss of one minibatch of wide examples (a scalar tensor).

        Parameters
        ----------
        wide : torch.Tensor [shape=(batch, time, ...)]
        """
        anchor = wide[:, self.anchor_slice]
        choice = int(torch.randint(len(self.deformations), (1,), generator=self._generator))
        positive = self.deformations[choice](anchor, wide)
        n = anchor.shape[0]
        # negatives: the anchor of another example (a derangement of the batch)
        shift = int(torch.randint(1, n, (1,), generator=self._generator)) if n > 1 else 0
        negative = torch.roll(anchor, shifts=shift, dims=0)
        a, p, neg = self._embed(anchor), self._embed(positive), self._embed(negative)
        d_pos = ((a - p) ** 2).sum(-1)
        d_neg = ((a - neg) ** 2).sum(-1)
        return F.relu(d_pos - d_neg + self.margin).mean()

    def train(self, data):
        """Train the embedding network; ``history["triplet"]`` gets the mean loss of each epoch.

        Parameters
        ----------
        data : array_like or torch.Tensor [shape=(n, time, ...)]
            Wide examples, n >= 2.

        Returns
        -------
        torch.nn.Module
            The trained network.
        """
        device = self.device or _device_of(self.network)
        network = self.network.to(device)
        x = _tensor(data)
        if x.ndim < 2 or x.shape[0] < 2:
            raise ParameterError("triplet training needs at least two (batch, time, ...) examples")
        optimizer = _make_optimizer(self.optimizer, network.parameters())
        for epoch in range(self.epochs):
            network.train()
            total, count = 0.0, 0
            for idx in self._batches(x.shape[0]):
                if len(idx) < 2:
                    continue
                optimizer.zero_grad()
                loss = self.triplet_loss(x[idx].to(device))
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            self._end_epoch(epoch, triplet=total / max(count, 1))
        network.eval()
        return network


class WassersteinGanTrainer(Trainer):
    """Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

    Parameters
    ----------
    network : torch.nn.Module
        With ``generator`` and ``discriminator`` attributes (the critic outputs one
        score per example).
    latent_dimension : tuple of int
        Shape of one latent (noise) vector.
    n_critic_iterations : int
        Critic minibatches per generator minibatch.
    epochs, batch_size : int
    preprocess_minibatch : callable, optional
        ``f(epoch, minibatch) -> minibatch`` applied to real minibatches.
    kwargs_factory : callable, optional
        ``f(epoch) -> dict`` of keyword arguments for generator and critic calls.
    debug_gradient : bool
        Record the mean absolute gradient of both networks in ``history``.
    gp_weight : float
        Gradient penalty weight (λ).
    generator_optimizer, critic_optimizer : Optimizer factories, optional
        Default: Adam(lr=1e-4, betas=(0, 0.9)).
    checkpoint_epochs : int
        Save a checkpoint every this many epochs (with ``checkpoint_dir``).
    checkpoint_dir : path, optional
        Where checkpoints go (none are saved without it).
    device : str or torch.device, optional
        Where training runs (the model's device by default).
    seed : int, optional
        Seeds the shuffling and initial noise, for a reproducible run.
    on_epoch_end : callable, optional
        ``f(epoch, history)`` after every epoch.

    Raises
    ------
    ParameterError
        When a count is not a positive integer or a parameter is out of range.

    Notes
    -----
    ``history["critic"]``: the critic loss; ``history["wasserstein"]``: the critic's
    estimate of the Wasserstein distance ``E[D(real)] - E[D(fake)]``;
    ``history["generator"]``: the generator loss.
    """

    def __init__(self, network, latent_dimension, n_critic_iterations, epochs, batch_size,
                 preprocess_minibatch=None, kwargs_factory=None, debug_gradient=False,
                 checkpoint_epochs=1, gp_weight=10.0, generator_optimizer=None,
                 critic_optimizer=None, checkpoint_dir=None, device=None, seed=None,
                 on_epoch_end=None):
        super().__init__(epochs, batch_size, checkpoint_epochs, checkpoint_dir, device, seed,
                         on_epoch_end)
        for name in ("generator", "discriminator"):
            if not hasattr(network, name):
                raise ParameterError(f"network must have a {name!r} attribute")
        self.network = network
        self.latent_dimension = tuple(np.atleast_1d(latent_dimension).astype(int).tolist())
        self.n_critic_iterations = max(int(n_critic_iterations), 1)
        self.preprocess_minibatch = preprocess_minibatch
        self.kwargs_factory = kwargs_factory
        self.debug_gradient = bool(debug_gradient)
        self.gp_weight = float(gp_weight)
        self.generator_optimizer = generator_optimizer
        self.critic_optimizer = critic_optimizer

    def _modules_to_save(self):
        return {"generator": self.network.generator,
                "discriminator": self.network.discriminator}

    def _noise(self, n, device):
        return torch.randn((n, *self.latent_dimension), generator=self._generator).to(device)

    def _gradient_penalty(self, critic, real, fake, kwargs):
        alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1),
                           generator=self._generator).to(real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        scores = critic(mixed, **kwargs)
        grads, = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
        return ((grads.reshape(grads.shape[0], -1).norm(dim=1) - 1) ** 2).mean()

    @staticmethod
    def _grad_magnitude(module):
        grads = [p.grad.abs().mean() for p in module.parameters() if p.grad is not None]
        return float(torch.stack(grads).mean()) if grads else 0.0

    def train(self, data):
        """Train generator and critic (WGAN-GP); the losses go to ``history``.

        Parameters
        ----------
        data : array_like or torch.Tensor [shape=(n, ...)]
            Real examples.

        Returns
        -------
        torch.nn.Module
            The network holding the trained ``generator`` and ``discriminator``.
        """
        device = self.device or _device_of(self.network)
        network = self.network.to(device)
        generator, critic = network.generator, network.discriminator
        x = _tensor(data)
        adam = lambda params: torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.9))  # noqa: E731
        g_opt = _make_optimizer(self.generator_optimizer or adam, generator.parameters())
        c_opt = _make_optimizer(self.critic_optimizer or adam, critic.parameters())
        for epoch in range(self.epochs):
            kwargs = self.kwargs_factory(epoch) if self.kwargs_factory else {}
            sums: dict[str, float] = {}
            steps = 0
            batches = list(self._batches(x.shape[0]))
            for b in range(0, len(batches), self.n_critic_iterations):
                generator.train()
                critic.train()
                for idx in batches[b:b + self.n_critic_iterations]:
                    real = x[idx].to(device)
                    if self.preprocess_minibatch is not None:
                        real = self.preprocess_minibatch(epoch, real)
                    with torch.no_grad():
                        fake = generator(self._noise(real.shape[0], device), **kwargs)
                    c_opt.zero_grad()
                    d_real = critic(real, **kwargs).mean()
                    d_fake = critic(fake, **kwargs).mean()
                    penalty = self._gradient_penalty(critic, real, fake, kwargs)
                    c_loss = d_fake - d_real + self.gp_weight * penalty
                    c_loss.backward()
                    if self.debug_gradient:
                        sums["critic_gradient"] = sums.get("critic_gradient", 0.0) + \
                            self._grad_magnitude(critic)
                    c_opt.step()
                    sums["critic"] = sums.get("critic", 0.0) + float(c_loss.detach())
                    sums["wasserstein"] = sums.get("wasserstein", 0.0) + float(
                        (d_real - d_fake).detach())
                    steps += 1
                for p in critic.parameters():
                    p.requires_grad_(False)
                g_opt.zero_grad()
                n = min(self.batch_size, x.shape[0])
                g_loss = -critic(generator(self._noise(n, device), **kwargs), **kwargs).mean()
                g_loss.backward()
                if self.debug_gradient:
                    sums["generator_gradient"] = sums.get("generator_gradient", 0.0) + \
                        self._grad_magnitude(generator) * self.n_critic_iterations
                g_opt.step()
                for p in critic.parameters():
                    p.requires_grad_(True)
                sums["generator"] = sums.get("generator", 0.0) + float(g_loss.detach()) * \
                    self.n_critic_iterations
            self._end_epoch(epoch, **{k: v / max(steps, 1) for k, v in sums.items()})
        generator.eval()
        critic.eval()
        return network

    def generate(self, n: int, **kwargs):
        """``n`` samples from the generator (no gradient).

        Parameters
        ----------
        n : int > 0
            How many.
        **kwargs
            Passed to the generator.

        Returns
        -------
        torch.Tensor [shape=(n, ...)]
        """
        device = _device_of(self.network.generator)
        with torch.no_grad():
            return self.network.generator(self._noise(int(n), device), **kwargs)

