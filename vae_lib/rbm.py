"""A restricted Boltzmann machine: binary pixels, binary hidden units, trained by contrastive
divergence (Hinton, 2002), and its partition function estimated by annealed importance sampling
(Salakhutdinov & Murray, 2008).

The Bernoulli-Bernoulli RBM has visible units ``v`` in {0, 1}^V (the pixels, flattened),
hidden units ``h`` in {0, 1}^H, and the energy

    E(v, h) = -b.v - c.h - v^T W h,        p(v, h) = exp(-E(v, h)) / Z,

with ``W`` the ``(V, H)`` weight matrix, ``b`` the visible and ``c`` the hidden biases. Summing
out ``h`` gives p(v) = exp(-F(v)) / Z with the free energy

    F(v) = -b.v - sum_j softplus(c_j + (v W)_j),

so log p(v) = -F(v) - log Z needs only the one number log Z, which is a sum over 2^min(V, H)
states: exact for a toy model (:meth:`RBM.log_partition_exact`), estimated by AIS for MNIST
(:func:`ais_log_partition`). Both conditionals are factorial:
p(h_j = 1 | v) = sigmoid(c_j + (v W)_j) and p(v_i = 1 | h) = sigmoid(b_i + (W h)_i), which is
what makes block Gibbs sampling, and contrastive divergence, cheap.

All log-probabilities and free energies are in nats, one number per example. Visible tensors
are ``(B, *input_shape)`` with values in [0, 1] and are flattened inside; inputs are moved to
the model's device and dtype.

Example::

    rbm = RBM(RBMConfig(n_hidden=500))
    history = fit(rbm, load_mnist("train").images, epochs=10)     # vae_lib.fit, RBMOptions
    ais = ais_log_partition(rbm, base_visible_bias=base_rate_visible_bias(train_x))
    log_px = rbm.log_likelihood(test_x, ais.log_z)          # (B,), nats
    images = rbm.sample(16, n_steps=1000)                   # (16, 1, 28, 28) probabilities
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import arguments
from .checks import check_unit_interval
from .data import binarize_images
from .distributions import log_mean_exp
from .loop import PROGRESS_REFRESH_SECONDS
from .training import BinarizedImages, FitOptions, Run, check_binarize

#: Largest number of units in the smaller layer that :meth:`RBM.log_partition_exact` enumerates
#: (2^22, about four million states).
MAX_EXACT_UNITS = 22
#: Elements of one block of enumerated states times the width of the other layer.
_ENUMERATION_BLOCK = 1 << 22


@dataclass(frozen=True)
class RBMConfig:
    """Settings of an :class:`RBM`.

    Attributes:
        input_shape: shape of one visible configuration, ``(1, 28, 28)`` for MNIST
            (V = 784 visible units).
        n_hidden: H, the number of binary hidden units.
        init_std: standard deviation of the Gaussian initial weights (biases start at 0).
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    n_hidden: int = 500
    init_std: float = 0.01

    def __post_init__(self) -> None:
        shape = arguments.positive_ints("input_shape", self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "n_hidden", arguments.positive_int("n_hidden", self.n_hidden))
        object.__setattr__(self, "init_std", arguments.real("init_std", self.init_std, minimum=0.0))


@dataclass(frozen=True)
class RBMOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for an :class:`RBM`, trained by (persistent) contrastive
    divergence with SGD, momentum and weight decay (checked when made).

    Attributes:
        batch_size: examples per step.
        lr: SGD learning rate.
        betas: unused (the RBM's optimiser is SGD).
        lr_schedule: ``None`` (constant) or ``"cosine"`` (from ``lr`` down to 0).
        k: Gibbs steps of the negative phase per update (>= 1).
        persistent: PCD (Tieleman, 2008: ``n_chains`` Gibbs chains continued from step to
            step, started from Bernoulli draws of random training images) or, with ``False``,
            CD-k (restarted at the data every step).
        n_chains: number of persistent chains; ``None`` gives ``batch_size`` (PCD only).
        momentum: SGD momentum, in [0, 1).
        weight_decay: L2 coefficient on the weights (a penalty ``weight_decay / 2 *
            ||W||^2``), not on the biases; >= 0.
        binarize: ``"dynamic"`` (a fresh Bernoulli draw of every batch; validation data is
            drawn once, with the run's generator), ``"threshold"`` or ``None`` (use the data
            as it is).
        init_visible_bias: first set the visible biases to the log-odds of the training pixel
            means (:func:`base_rate_visible_bias`), as Hinton's guide advises. Turn it off to
            continue training a model.
    """

    batch_size: int = 100
    lr: float = 0.02
    k: int = 1
    persistent: bool = True
    n_chains: int | None = None
    momentum: float = 0.5
    weight_decay: float = 1e-4
    binarize: str | None = "dynamic"
    init_visible_bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("k", arguments.positive_int("k", self.k))
        arguments.boolean("persistent", self.persistent)
        if self.n_chains is not None:
            self._set("n_chains", arguments.positive_int("n_chains", self.n_chains))
        elif self.persistent:
            self._set("n_chains", self.batch_size)
        self._set("momentum", arguments.probability("momentum", self.momentum))
        self._set("weight_decay", arguments.real("weight_decay", self.weight_decay, minimum=0.0))
        check_binarize(self.binarize)
        arguments.boolean("init_visible_bias", self.init_visible_bias)


def _bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A 0/1 draw with probabilities ``p`` (u < p with u ~ U(0, 1), faster than bernoulli)."""
    u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return (u < p).to(p.dtype)


def _exact_dtype(device: torch.device) -> torch.dtype:
    """float64 for sums that must be exact, except on Apple MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


class RBM(BinarizedImages):
    """A Bernoulli-Bernoulli restricted Boltzmann machine.

    Parameters: ``weight (V, H)``, ``visible_bias (V,)`` (b), ``hidden_bias (H,)`` (c).

    Trained by :func:`vae_lib.fit` (settings: :class:`RBMOptions`; data: a tensor
    ``(N, *input_shape)`` in [0, 1]), whose every step is one :func:`cd_gradient` estimate and
    one SGD step. Its history: ``train_reconstruction`` (:meth:`reconstruction_error`, nats per
    image, each minibatch measured just before its update) and, with validation data,
    ``val_reconstruction`` and ``val_free_energy`` (mean F(v)) after each epoch. Neither is
    the log-likelihood, which needs log Z (:func:`ais_log_partition`).

    Example::

        rbm = RBM(RBMConfig(input_shape=(1, 28, 28), n_hidden=500))
        p_h = rbm.hidden_probs(x)            # (B, 500)
        f = rbm.free_energy(x)               # (B,), nats
        samples = rbm.sample(16)             # (16, 1, 28, 28), pixel probabilities
        history = fit(rbm, train_x, epochs=10, val=val_x, k=1, persistent=True)
    """

    Options = RBMOptions
    curves = ("reconstruction",)
    watched = "the RBM's parameters (sums of W, b, c)"
    Config = RBMConfig

    def __init__(self, config: RBMConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        self.weight = nn.Parameter(torch.randn(self.input_size, c.n_hidden) * c.init_std)
        self.visible_bias = nn.Parameter(torch.zeros(self.input_size))
        self.hidden_bias = nn.Parameter(torch.zeros(c.n_hidden))

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    @property
    def n_visible(self) -> int:
        """V, the number of visible units (pixels)."""
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        """H, the number of hidden units."""
        return self.weight.shape[1]

    # -- checks and flat internals --------------------------------------------------------
    def _check_v(self, v: torch.Tensor, name: str = "v") -> torch.Tensor:
        """Checks ``v (B, *input_shape)`` in [0, 1]; returns it flat ``(B, V)`` on the model."""
        arguments.shaped_tensor(name, v, self.input_shape)
        check_unit_interval(name, v)
        return v.reshape(v.shape[0], self.n_visible).to(self.weight)

    def _check_h(self, h: torch.Tensor) -> torch.Tensor:
        arguments.shaped_tensor("h", h, (self.n_hidden,))
        check_unit_interval("h", h)
        return h.to(self.weight)

    def _unflatten(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape[0], *self.input_shape)

    def _hidden_logits_flat(self, v: torch.Tensor) -> torch.Tensor:
        return self.hidden_bias + v @ self.weight

    def _visible_logits_flat(self, h: torch.Tensor) -> torch.Tensor:
        return self.visible_bias + h @ self.weight.T

    def _gibbs_flat(self, v: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        h = _bernoulli(torch.sigmoid(self._hidden_logits_flat(v)), generator)
        return _bernoulli(torch.sigmoid(self._visible_logits_flat(h)), generator)

    # -- conditionals and sampling --------------------------------------------------------
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) = sigmoid(c_j + (v W)_j): ``(B, *input_shape) -> (B, H)``."""
        return torch.sigmoid(self._hidden_logits_flat(self._check_v(v)))

    def visible_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Log-odds of p(v_i = 1 | h), b_i + (W h)_i: ``(B, H) -> (B, *input_shape)``."""
        return self._unflatten(self._visible_logits_flat(self._check_h(h)))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) = sigmoid(b_i + (W h)_i): ``(B, H) -> (B, *input_shape)``."""
        return torch.sigmoid(self.visible_logits(h))

    @torch.no_grad()
    def sample_hidden(
        self, v: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A binary draw h ~ p(h | v): ``(B, *input_shape) -> (B, H)`` with values in {0, 1}."""
        arguments.generator("generator", generator, self.device)
        return _bernoulli(self.hidden_probs(v), generator)

    @torch.no_grad()
    def sample_visible(
        self, h: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A binary draw v ~ p(v | h): ``(B, H) -> (B, *input_shape)`` with values in {0, 1}."""
        arguments.generator("generator", generator, self.device)
        return _bernoulli(self.visible_probs(h), generator)

    @torch.no_grad()
    def gibbs_step(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One block Gibbs step v -> h ~ p(h|v) -> v' ~ p(v|h); returns the binary v'
        ``(B, *input_shape)``."""
        arguments.generator("generator", generator, self.device)
        return self._unflatten(self._gibbs_flat(self._check_v(v), generator))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        n_steps: int = 1000,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run ``n`` Gibbs chains in parallel and return their last visible probabilities.

        Each chain starts from uniformly random binary pixels (or from the rows of ``init``)
        and makes ``n_steps`` block Gibbs steps v -> h -> v. The result is p(v | h) of the last
        step, ``(n, *input_shape)`` in [0, 1]: the usual way to show RBM samples, smoother than
        the binary draw (which is a Bernoulli draw of it).

        Args:
            n: number of chains (>= 1).
            generator: ``torch.Generator`` on the model's device.
            n_steps: Gibbs steps per chain (>= 1). Chains mix slowly between digit classes;
                a thousand steps is a common choice for MNIST.
            init: optional ``(n, *input_shape)`` starting states in [0, 1].
        """
        n = arguments.positive_int("n", n)
        n_steps = arguments.positive_int("n_steps", n_steps)
        arguments.generator("generator", generator, self.device)
        if init is None:
            half = torch.full((n, self.n_visible), 0.5, device=self.device, dtype=self.weight.dtype)
            v = _bernoulli(half, generator)
        else:
            v = self._check_v(init, "init")
            if v.shape[0] != n:
                raise ValueError(f"init holds {v.shape[0]} starting states; expected n={n}")
        for _ in range(n_steps):
            h = _bernoulli(torch.sigmoid(self._hidden_logits_flat(v)), generator)
            p = torch.sigmoid(self._visible_logits_flat(h))
            v = _bernoulli(p, generator)
        return self._unflatten(p)

    # -- energies and probabilities -------------------------------------------------------
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) = -b.v - c.h - v^T W h, in nats: ``(B, *input_shape), (B, H) -> (B,)``."""
        v, h = self._check_v(v), self._check_h(h)
        if v.shape[0] != h.shape[0]:
            raise ValueError(f"v holds {v.shape[0]} examples but h holds {h.shape[0]}")
        return -(v @ self.visible_bias) - h @ self.hidden_bias - ((v @ self.weight) * h).sum(-1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) = -b.v - sum_j softplus(c_j + (v W)_j), in nats:
        ``(B, *input_shape) -> (B,)``. log p(v) = -F(v) - log Z."""
        return self._free_energy_flat(self._check_v(v))

    def _free_energy_flat(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.visible_bias) - F.softplus(self._hidden_logits_flat(v)).sum(-1)

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """Mean-field reconstruction p(v' = 1 | h = p(h | v)): ``(B, *input_shape)`` -> same."""
        v = self._check_v(v)
        return self._unflatten(torch.sigmoid(self._reconstruction_logits_flat(v)))

    def _reconstruction_logits_flat(self, v: torch.Tensor) -> torch.Tensor:
        return self._visible_logits_flat(torch.sigmoid(self._hidden_logits_flat(v)))

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of :meth:`reconstruct`'s probabilities against ``v``, summed
        over the pixels: ``(B, *input_shape) -> (B,)``, nats per image.

        The usual (and cheap) progress monitor of CD training; it is *not* the likelihood.
        """
        return self._reconstruction_error_flat(self._check_v(v))

    def _reconstruction_error_flat(self, v: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(
            self._reconstruction_logits_flat(v), v, reduction="none"
        )
        return bce.sum(-1)

    def _log_partition_exact_tensor(self) -> torch.Tensor:
        """log Z as a 0-dim tensor (float64, differentiable in the parameters).

        Enumerates the 2^n states s of the smaller layer in blocks and sums the other layer out
        analytically: with n = H, log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)];
        with n = V, log Z = logsumexp_v [-F(v)].
        """
        n_small = min(self.n_visible, self.n_hidden)
        if n_small > MAX_EXACT_UNITS:
            raise ValueError(
                f"exact log Z enumerates 2^{n_small} states of the smaller layer "
                f"(V={self.n_visible}, H={self.n_hidden}); at most 2^{MAX_EXACT_UNITS} are "
                f"allowed: use ais_log_partition for a model this size"
            )
        dtype = _exact_dtype(self.device)
        w = self.weight.to(dtype)
        b, c = self.visible_bias.to(dtype), self.hidden_bias.to(dtype)
        if self.n_hidden <= self.n_visible:
            own, other, w_to_other = c, b, w.T  # enumerate h, sum v out
        else:
            own, other, w_to_other = b, c, w  # enumerate v, sum h out
        bits = torch.arange(n_small, device=self.device)
        block = max(1, _ENUMERATION_BLOCK // max(self.n_visible, self.n_hidden))
        parts = []
        for start in range(0, 2**n_small, block):
            index = torch.arange(start, min(start + block, 2**n_small), device=self.device)
            s = ((index[:, None] >> bits) & 1).to(dtype)  # (m, n_small) binary states
            log_f = s @ own + F.softplus(other + s @ w_to_other).sum(-1)
            parts.append(torch.logsumexp(log_f, dim=0))
        return torch.logsumexp(torch.stack(parts), dim=0)

    def log_partition_exact(self) -> float:
        """log Z = log sum_{v,h} exp(-E(v, h)), in nats, exactly, by enumeration.

        Enumerates the 2^min(V, H) states of the smaller layer (summing over the other layer
        analytically), in float64. Only for toy models: raises ``ValueError`` when the smaller
        layer has more than ``MAX_EXACT_UNITS`` (22) units.
        """
        with torch.no_grad():
            return self._log_partition_exact_tensor().item()

    def log_likelihood(self, v: torch.Tensor, log_z: float | torch.Tensor) -> torch.Tensor:
        """log p(v) = -F(v) - log Z in nats, ``(B, *input_shape) -> (B,)``.

        ``log_z`` comes from :meth:`log_partition_exact` or, for a large model, from
        :func:`ais_log_partition` (an estimate: the log-likelihoods are then estimates too).
        """
        if isinstance(log_z, torch.Tensor):
            if log_z.numel() != 1:
                raise ValueError(f"log_z must be a number, got a tensor of shape {log_z.shape}")
            log_z = log_z.reshape(()).to(self.device)
        elif not isinstance(log_z, (int, float)) or isinstance(log_z, bool):
            raise ValueError(f"log_z must be a float or a one-element tensor, got {log_z!r}")
        return -self.free_energy(v) - log_z

    # -- training with vae_lib.fit ----------------------------------------------------------
    def loss(self, batch: torch.Tensor, run: Run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What is measured on ``batch (B, *input_shape)``, nats per image: ``(mean
        reconstruction error, {"reconstruction": (B,), "free_energy": (B,)})``, the
        :meth:`reconstruction_error` and :meth:`free_energy` of each example.

        Contrastive divergence minimises neither (its gradient is not that of a computable
        loss); they are the monitors of training (:meth:`evaluation`)."""
        v = batch.reshape(batch.shape[0], self.n_visible)
        reconstruction = self._reconstruction_error_flat(v)
        parts = {"reconstruction": reconstruction, "free_energy": self._free_energy_flat(v)}
        return reconstruction.mean(), parts

    @torch.no_grad()
    def evaluation(self, data: torch.Tensor, run: Run, batch_size: int = 1000) -> dict[str, float]:
        """Mean reconstruction error and mean free energy of prepared ``data``, nats per
        image: ``{"reconstruction": ..., "free_energy": ...}`` (the history's
        ``val_reconstruction`` and ``val_free_energy``)."""
        sums = {"reconstruction": 0.0, "free_energy": 0.0}
        for chunk in data.split(batch_size):
            _, parts = self.loss(chunk, run)
            for name in sums:
                sums[name] += parts[name].sum().item()
        return {name: value / data.shape[0] for name, value in sums.items()}

    def training_data(self, data: torch.Tensor, run: Run, *, name: str) -> torch.Tensor:
        """``data`` ``(N, *input_shape)`` of any floating-point type, converted to the model's
        dtype and moved to its device, values in [0, 1] (checked here once); validation data
        is binarized once here (a ``"dynamic"`` binarization draws it with the run's
        generator)."""
        x = arguments.data_set(name, data, input_shape=self.input_shape)
        return super().training_data(x.to(self.dtype), run, name=name)

    def _check_values(self, name: str, x: torch.Tensor, binarize: str | None) -> None:
        check_unit_interval(name, x)

    def configure_optimizers(self, run: Run) -> list[torch.optim.Optimizer]:
        """One SGD with momentum; weight decay on the weights only, not the biases."""
        o = run.options
        return [
            torch.optim.SGD(
                [
                    {"params": [self.weight], "weight_decay": o.weight_decay},
                    {"params": [self.visible_bias, self.hidden_bias], "weight_decay": 0.0},
                ],
                lr=o.lr,
                momentum=o.momentum,
            )
        ]

    def start_training(self, data: torch.Tensor, run: Run) -> dict[str, torch.Tensor]:
        """With ``init_visible_bias``, the visible biases set to the base rates of ``data``
        (thresholded first for ``binarize="threshold"``); with ``persistent``, the chains
        ``(n_chains, *input_shape)``: Bernoulli draws (or thresholds) of random rows of
        ``data``, drawn with the run's generator, kept as a loop tensor (``"chain"``)."""
        o = run.options
        if o.init_visible_bias:
            with torch.no_grad():
                base = data if o.binarize != "threshold" else binarize_images(data, "threshold")
                self.visible_bias.copy_(base_rate_visible_bias(base))
        if not o.persistent:
            return {}
        n = data.shape[0]
        start = data[torch.randint(n, (o.n_chains,), generator=run.generator, device=self.device)]
        mode = "threshold" if o.binarize == "threshold" else "dynamic"
        return {"chain": binarize_images(start, mode, run.generator)}

    def training_step(self, batch: torch.Tensor, run: Run) -> tuple[torch.Tensor, torch.Tensor]:
        """One :func:`cd_gradient` estimate (from the persistent chains, which it advances, or
        from the data for CD-k), the minibatch's reconstruction error measured before the
        update, then one SGD step. Watched: the sums of W, b and c (a sum is NaN or infinite
        as soon as one of its terms is, or when it overflows, which for an RBM's parameters
        means they are useless too)."""
        o = run.options
        (optimizer,) = run.optimizers
        chain = cd_gradient(
            self, batch, k=o.k, chain=run.tensors.get("chain"), generator=run.generator
        )
        if o.persistent:
            run.tensors["chain"] = chain
        with torch.no_grad():
            v = batch.reshape(batch.shape[0], self.n_visible)
            reconstruction = self._reconstruction_error_flat(v).sum().reshape(1)
        optimizer.step()
        parameters = (self.weight, self.visible_bias, self.hidden_bias)
        return torch.stack([p.sum() for p in parameters]), reconstruction


def base_rate_visible_bias(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The visible biases of independent pixels with the data's means: logit of the pixel means.

    b_i = log(p_i / (1 - p_i)) with p_i the mean of pixel i over the examples, clipped to
    ``[eps, 1 - eps]`` so that pixels that are always 0 (or 1) get a finite bias. The initial
    visible biases of Hinton's practical guide, and the best factorial base distribution for
    :func:`ais_log_partition`.

    Args:
        x: ``(N, ...)`` data in [0, 1] (binary, or grey levels read as probabilities).
        eps: clipping of the means, in (0, 0.5).

    Returns:
        ``(V,)`` biases, V the number of values per example, on ``x``'s device and dtype.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise ValueError("x must be a floating-point tensor of shape (N, ...)")
    if x.shape[0] < 1:
        raise ValueError("x must hold at least one example")
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    check_unit_interval("x", x)
    return torch.logit(x.reshape(x.shape[0], -1).mean(0).clamp(eps, 1 - eps))


# -- contrastive divergence -------------------------------------------------------------------
def _check_cd_arguments(rbm: RBM, v_data: torch.Tensor, k: int, chain: torch.Tensor | None):
    if not isinstance(rbm, RBM):
        raise ValueError(f"rbm must be an RBM, got {type(rbm).__name__}")
    k = arguments.positive_int("k", k)
    rbm._check_v(v_data, "v_data")
    if chain is not None:
        rbm._check_v(chain, "chain")


def cd_gradient(
    rbm: RBM,
    v_data: torch.Tensor,
    *,
    k: int = 1,
    chain: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One contrastive-divergence estimate of the gradient of -mean log p(v_data).

    The exact gradient is E_model[stats] - E_data[stats], with stats v h^T, v and h. The data
    term uses p(h | v_data); the model term uses the end of k Gibbs steps started at
    ``v_data`` (CD-k) or at the persistent ``chain`` (PCD). Hidden probabilities, not samples,
    go into the statistics (Hinton's practical guide). The estimate is *written* into the
    ``.grad`` of ``weight``, ``visible_bias`` and ``hidden_bias`` (replacing what was there),
    so that any torch optimizer's ``step()`` lowers the negative log-likelihood.

    Args:
        rbm: the model.
        v_data: ``(B, *input_shape)`` data batch in [0, 1].
        k: Gibbs steps of the negative phase (>= 1).
        chain: ``None`` for CD-k, or the ``(C, *input_shape)`` binary persistent chains.
        generator: ``torch.Generator`` on the model's device.

    Returns:
        the chains after the k steps, ``(C, *input_shape)`` (``C = B`` for CD-k), detached:
        pass them back as ``chain`` for PCD.
    """
    _check_cd_arguments(rbm, v_data, k, chain)
    with torch.no_grad():
        v0 = v_data.flatten(1).to(rbm.weight)
        vk = v0 if chain is None else chain.flatten(1).to(rbm.weight)
        for _ in range(k):
            vk = rbm._gibbs_flat(vk, generator)
        h0 = torch.sigmoid(rbm._hidden_logits_flat(v0))  # positive phase: p(h | data)
        hk = torch.sigmoid(rbm._hidden_logits_flat(vk))  # negative phase: p(h | chain)
        rbm.weight.grad = vk.T @ hk / len(vk) - v0.T @ h0 / len(v0)
        rbm.visible_bias.grad = vk.mean(0) - v0.mean(0)
        rbm.hidden_bias.grad = hk.mean(0) - h0.mean(0)
    return rbm._unflatten(vk)


#: The curves of an RBM's :class:`vae_lib.History` from :func:`vae_lib.fit`, in nats per
#: image. ``train_reconstruction`` is the mean binary cross-entropy of the mean-field
#: reconstruction (:meth:`RBM.reconstruction_error`), averaged over the epoch's examples (each
#: minibatch measured just before its update). ``val_reconstruction`` and ``val_free_energy``
#: (mean F(v)) are measured on the validation data after each epoch (absent without it).
#: Neither is the log-likelihood, which needs log Z (:func:`ais_log_partition`).
RBM_CURVES = ("train_reconstruction", "val_reconstruction", "val_free_energy")


# -- annealed importance sampling -------------------------------------------------------------
@dataclass
class AISResult:
    """An AIS estimate of log Z (:func:`ais_log_partition`), in nats.

    Attributes:
        log_z: the estimate, log Z_0 + log mean_r exp(log_weights_r).
        log_z_std: its standard error by the delta method, sd(w) / (sqrt(R) * mean(w)) with
            w the R importance weights: the spread of log_z over repeated runs, *if* the
            weights' variance is well estimated (with a poor schedule it is underestimated,
            and log_z is then typically too low by more than this).
        log_weights: ``(R,)`` log importance weights, one per run (CPU, float64).
        log_z_base: log Z_0 of the base distribution.
    """

    log_z: float
    log_z_std: float
    log_weights: torch.Tensor
    log_z_base: float


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    *,
    n_runs: int = 100,
    n_betas: int = 10_000,
    betas: torch.Tensor | None = None,
    base_visible_bias: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> AISResult:
    """Estimate log Z of ``rbm`` by annealed importance sampling (Salakhutdinov & Murray, 2008).

    AIS anneals from a base RBM p_A with zero weights, visible biases b_A and H hidden units
    (whose log Z_0 = sum_i softplus(b_A_i) + H log 2 is known) to the model through the
    unnormalised marginals

        log f_beta(v) = ((1 - beta) b_A + beta b).v + sum_j softplus(beta (c_j + (v W)_j)),

    f_0 being p_A's and f_1 = exp(-F(v)) the model's. Each run draws v ~ p_A, then for every
    beta_k accumulates log f_{beta_k}(v) - log f_{beta_(k-1)}(v) and moves v by one Gibbs
    transition that leaves p_(beta_k) invariant: h ~ sigmoid(beta (c + v W)),
    v ~ sigmoid((1 - beta) b_A + beta (b + W h)). All runs go in parallel, one transition per
    beta, and log Z = log Z_0 + log mean exp(log weights).

    The estimate of Z is unbiased, but that of log Z is biased *down* (Jensen), and with too
    few betas or runs it is usually too low, so log-likelihoods computed with it tend to be
    *overestimated*. The base rates of the data as b_A (:func:`base_rate_visible_bias`) put p_A
    much nearer the model than b_A = 0 and make the estimate far more accurate for the same
    cost. Two cheap checks of an estimate: log Z >= logsumexp_n(-F(v_n)) over any set of
    distinct states (a data set, say), a hard lower bound; and runs from two different bases
    (b_A = 0 and the base rates) should agree. A model whose Gibbs chains mix poorly (a
    badly trained PCD model, for instance) can fail both while ``log_z_std`` looks small.

    Args:
        rbm: the model.
        n_runs: R, the number of independent AIS runs (>= 2).
        n_betas: number of inverse temperatures, linearly spaced from 0 to 1 (>= 2).
        betas: instead, the ``(K,)`` schedule itself: increasing from 0 to 1.
        base_visible_bias: ``(V,)`` b_A, zeros if ``None``.
        generator: ``torch.Generator`` on the model's device.
        progress: show a ``tqdm`` progress bar over the betas.

    Returns:
        :class:`AISResult`.
    """
    if not isinstance(rbm, RBM):
        raise ValueError(f"rbm must be an RBM, got {type(rbm).__name__}")
    n_runs = arguments.integer("n_runs", n_runs, minimum=2)
    if betas is None:
        n_betas = arguments.integer("n_betas", n_betas, minimum=2)
        betas = torch.linspace(0.0, 1.0, n_betas, dtype=torch.float64)
    if not isinstance(betas, torch.Tensor) or betas.dim() != 1 or betas.numel() < 2:
        raise ValueError("betas must be a 1-D tensor of at least two inverse temperatures")
    betas = betas.detach().to("cpu", torch.float64)
    if betas[0] != 0 or betas[-1] != 1 or not bool((betas.diff() >= 0).all()):
        raise ValueError("betas must increase (weakly) from 0 to 1")
    arguments.generator("generator", generator, rbm.device)
    w, b, c = rbm.weight, rbm.visible_bias, rbm.hidden_bias
    if base_visible_bias is None:
        b_a = torch.zeros_like(b)
    else:
        if not isinstance(base_visible_bias, torch.Tensor) or base_visible_bias.shape != b.shape:
            raise ValueError(f"base_visible_bias must be a tensor of shape ({rbm.n_visible},)")
        b_a = base_visible_bias.detach().to(b)
        if not bool(b_a.isfinite().all()):
            raise ValueError("base_visible_bias must be finite")
    acc = _exact_dtype(rbm.device)
    log_z_base = (F.softplus(b_a.to(acc)).sum() + rbm.n_hidden * math.log(2.0)).item()

    db = b - b_a
    v = _bernoulli(torch.sigmoid(b_a).expand(n_runs, -1), generator)  # v ~ p_A
    x = c + v @ w  # hidden pre-activations at beta = 1, (R, H)
    log_w = torch.zeros(n_runs, device=rbm.device, dtype=acc)
    schedule = betas.tolist()
    last = len(schedule) - 1
    for step in tqdm(
        range(1, last + 1),
        desc="AIS",
        disable=not progress,
        mininterval=PROGRESS_REFRESH_SECONDS,
    ):
        beta, previous = schedule[step], schedule[step - 1]
        log_w += ((beta - previous) * (v @ db)).to(acc)
        log_w += (F.softplus(beta * x) - F.softplus(previous * x)).sum(-1).to(acc)
        if step < last:  # a transition that leaves p_beta invariant
            h = _bernoulli(torch.sigmoid(beta * x), generator)
            v = _bernoulli(torch.sigmoid(b_a + beta * (db + h @ w.T)), generator)
            x = c + v @ w
    log_w = log_w.cpu().double()
    scaled = (log_w - log_w.max()).exp()
    log_z_std = (scaled.std() / (math.sqrt(n_runs) * scaled.mean())).item()
    return AISResult(
        log_z=log_z_base + log_mean_exp(log_w).item(),
        log_z_std=log_z_std,
        log_weights=log_w,
        log_z_base=log_z_base,
    )
