"""Conditional VAEs: a latent-variable model of p(x | c) for a condition c.

The condition is a vector: a one-hot class label (:func:`one_hot`), to generate the digit one
asks for, or the visible part of an image (:func:`vae_lib.quadrants.observe`), to complete it.
The generative model and the encoder are chapter 3's with every distribution conditioned on c:

    p_theta(x | c) = integral of p_theta(x | z, c) p_theta(z | c) dz,   encoder q_phi(z | x, c),

and the conditional ELBO (Sohn, Lee & Yan, 2015) bounds the conditional log-likelihood,

    log p(x | c) >= E_{q(z|x,c)}[log p(x | z, c)] - KL(q(z | x, c) || p(z | c)).

The prior p(z | c) is the fixed N(0, I) (``prior="standard"``, the usual choice for labels:
c then enters only through the encoder and the decoder) or a diagonal Gaussian whose mean and
log-variance a network computes from c (``prior="learned"``, needed when c alone says much about
z, as the visible quarter of a digit does). The reparameterization is unchanged:
z = mu + sigma * eps.

A ``mask`` restricts the likelihood to the pixels the model has to predict (the missing
quadrants): ``log p(x_mask | z, c)``, summed over the masked pixels only. Without a mask every
pixel counts. The likelihood is Bernoulli; targets may be binary or grey levels in [0, 1] (for
grey levels the "log-likelihood" is minus the binary cross-entropy, as in Pyro's CVAE example).

Training and scoring go through the library's one trainer and estimators:

    fit(cvae, (images, labels), epochs=60, val=(val_images, val_labels), binarize="dynamic")
    fit(completer, (images, labels), epochs=100, task="quadrants")   # the labels are unused
    evaluate(cvae, (binary_images, labels))                            # one-sample ELBO, nats
    evaluate(completer, (x, c, missing))                               # ELBO of the missing pixels
    iwae_bound(completer, (x, c, missing), k=1000)                     # bound on log p(x_m | c)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from . import arguments
from .checks import check_finite, check_unit_interval
from .distributions import bernoulli_log_likelihood, diagonal_gaussian_kl, reparameterize
from .elementwise import softplus
from .losses import LatentOutput, _elbo_parts
from .quadrants import QUADRANT_COUNTS, _observe, random_quadrant_counts
from .training import FitOptions, Run, Trainable
from .vae import ACTIVATIONS, mlp

#: The two priors p(z | c) a :class:`ConditionalVAE` can have.
PRIORS = ("standard", "learned")

#: What a :class:`ConditionalVAE` can be trained to condition on (its ``task`` option): the
#: class label, or the visible quadrants of the image itself.
CONDITIONING_TASKS = ("labels", "quadrants")


def _check_labels(name: str, labels: Any, n_classes: int, n: int | None = None) -> torch.Tensor:
    """``labels`` if it is a ``(B,)`` integer tensor of class indices in ``[0, n_classes)``
    (with ``B = n`` when ``n`` is given); a ``ValueError`` naming ``name`` otherwise."""
    expected = f"a 1-D ({'B' if n is None else n},) integer tensor of class indices"
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be {expected}, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be {expected}, got a tensor of dtype {labels.dtype}")
    if labels.dim() != 1:
        raise ValueError(
            f"{name} must be {expected}, got shape {tuple(labels.shape)} (one label per "
            "example: flatten a (B, 1) tensor with labels.view(-1))"
        )
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} labels for {n} examples")
    if n_classes is not None and labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes}) (the model's condition_dim classes); got "
            f"{labels.min().item()}..{labels.max().item()}"
        )
    return labels


def one_hot(labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """Class labels as conditions: ``(B,)`` integers in ``[0, n_classes)`` -> ``(B, n_classes)``
    float32 one-hot vectors on the labels' device.

    ``n_classes`` defaults to the ten digits; for a :class:`ConditionalVAE` pass its
    ``condition_dim`` (training does). Labels that are not a 1-D integer tensor (a ``(B, 1)``
    column, floats, bools) or lie outside the range are refused with a ``ValueError``.
    """
    n_classes = arguments.positive_int("n_classes", n_classes)
    labels = _check_labels("labels", labels, n_classes)
    return F.one_hot(labels.long(), n_classes).float()


@dataclass(frozen=True)
class ConditionalVAEConfig:
    """Settings of a :class:`ConditionalVAE` (MLP encoder, decoder and prior network).

    Attributes:
        input_shape: shape of one observation x, e.g. ``(1, 28, 28)``.
        condition_dim: C, the length of the condition vector c (10 for one-hot digit labels,
            784 for :func:`vae_lib.quadrants.observe`).
        hidden_dims: widths of the hidden layers of the encoder and the prior network; the
            decoder mirrors them.
        latent_dim: J, the dimension of z.
        prior: ``"standard"`` (p(z | c) = N(0, I)) or ``"learned"`` (a network of c).
        encoder_sees_condition: the encoder reads (x, c); ``False`` lets it read x alone, for a
            condition that is a function of x (the visible quadrants of x itself), which saves
            the encoder's C input weights.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    condition_dim: int = 10
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    prior: str = "standard"
    encoder_sees_condition: bool = True
    activation: str = "relu"

    def __post_init__(self) -> None:
        fields = {
            "input_shape": arguments.positive_ints("input_shape", self.input_shape),
            "condition_dim": arguments.positive_int("condition_dim", self.condition_dim),
            "hidden_dims": arguments.positive_ints(
                "hidden_dims", self.hidden_dims, allow_empty=True
            ),
            "latent_dim": arguments.positive_int("latent_dim", self.latent_dim),
            "encoder_sees_condition": arguments.boolean(
                "encoder_sees_condition", self.encoder_sees_condition
            ),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        arguments.one_of("prior", self.prior, PRIORS)
        arguments.one_of("activation", self.activation, tuple(ACTIVATIONS))


@dataclass
class ConditionalVAEOutput(LatentOutput):
    """What one forward pass computes; per-example tensors are ``(B,)`` and in nats.

    Attributes:
        elbo: reconstruction - beta * kl, the training objective (maximised).
        reconstruction: log p(x | z, c) at one z ~ q(z | x, c), over the masked pixels.
        kl: KL(q(z | x, c) || p(z | c)), closed form.
        z: ``(B, J)`` the sampled codes.
        mu, logvar: ``(B, J)`` parameters of q(z | x, c).
        prior_mu, prior_logvar: ``(B, J)`` parameters of p(z | c) (zeros for the standard prior).
        decoder_output: ``(B, *input_shape)`` logits of p(x | z, c).
    """

    prior_mu: torch.Tensor
    prior_logvar: torch.Tensor
    decoder_output: torch.Tensor


@dataclass(frozen=True)
class ConditionalVAEOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`ConditionalVAE` (the defaults of the
    trainer that made the zoo's models: Adam with lr 1e-3, the learning rate decaying to 0 along
    a cosine, batches of 128).

    Attributes:
        task: how the condition is made from the data when the data does not give it:
            ``"labels"`` (c = the one-hot label, ``condition_dim`` classes; every pixel scored)
            or ``"quadrants"`` (c = the visible quadrants of :func:`vae_lib.quadrants.observe`, a
            random number of them, drawn for every image of every minibatch; only the missing
            pixels scored; validation data is scored with 1, 2 and 3 given quadrants, as
            ``val_elbo_1``, ``val_elbo_2``, ``val_elbo_3`` and their parts). Data that gives
            its conditions, ``(x, c)`` or ``(x, c, mask)``, is used as given.
        binarize: ``None`` (train on the images as given, e.g. grey levels as Pyro's example
            does) or ``"dynamic"`` (a fresh Bernoulli draw of every minibatch; validation images
            are then drawn once, with the run's generator).
    """

    lr_schedule: str | None = "cosine"
    task: str = "labels"
    binarize: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        arguments.one_of("task", self.task, CONDITIONING_TASKS)
        arguments.one_of("binarize", self.binarize, (None, "dynamic"))


@dataclass(frozen=True)
class ConditionalData:
    """A data set prepared for training or scoring (:meth:`ConditionalVAE.training_data`),
    on the model's device.

    Attributes:
        kind: ``"labels"`` (conditions = one-hot labels), ``"quadrants"`` (conditions = visible
            quadrants, drawn per step) or ``"given"`` (conditions given with the data).
        x: ``(N, *input_shape)`` images in [0, 1].
        labels: ``(N,)`` class indices (``"labels"``), else ``None``.
        c: ``(N, C)`` conditions (``"given"``), else ``None``.
        mask: ``(N, *input_shape)`` bool, True at the pixels scored (``"given"`` with a mask),
            else ``None``.
    """

    kind: str
    x: torch.Tensor
    labels: torch.Tensor | None = None
    c: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class ConditionalVAE(Trainable):
    """A conditional VAE with MLP networks: q(z | x, c), p(z | c) and p(x | z, c).

    Encoder: (x, c) -> hidden_dims -> (mu, logvar). Prior network (``prior="learned"``):
    c -> hidden_dims -> (mu, logvar). Decoder: (z, c) -> reversed(hidden_dims) -> pixel logits.

    Trained by :func:`vae_lib.fit` on the conditional ELBO, one reparameterized z per example
    (options :class:`ConditionalVAEOptions`); the data is one of

    * ``(images, labels)``: ``(N, *input_shape)`` images in [0, 1] and ``(N,)`` integer labels.
      With ``task="labels"`` the condition is ``one_hot(labels, condition_dim)`` and every pixel
      is scored; with ``task="quadrants"`` the labels are not used (the images alone will do,
      and :func:`vae_lib.training.evaluate` then reports ``elbo_1``, ``elbo_2``, ``elbo_3``...,
      one set per number of given quadrants).
    * ``(x, c)`` or ``(x, c, mask)``: images, their ``(N, C)`` float conditions and an optional
      bool mask broadcasting to ``(N, *input_shape)``, True at the pixels scored. Used as given
      whatever the task: what :func:`vae_lib.training.evaluate` takes to score the missing
      pixels of a completion, ``evaluate(model, (x, *observe(x, n_given)))``.

    The history records ``train_elbo``, ``train_reconstruction``, ``train_kl`` and their
    ``val_`` twins (``val_elbo_1``... by number of given quadrants for ``task="quadrants"``).
    :func:`vae_lib.estimators.iwae_bound` scores ``(x, c)`` or ``(x, c, mask)`` batches.

    Example::

        model = ConditionalVAE(ConditionalVAEConfig(condition_dim=10))
        fit(model, (images, labels), epochs=60, binarize="dynamic")
        out = model(x, one_hot(labels))                  # out.elbo, out.reconstruction, out.kl
        digits = model.sample(1, labels=torch.arange(10))[0]  # one of each digit, (10, 1, 28, 28)
    """

    Options = ConditionalVAEOptions
    curves = ("elbo", "reconstruction", "kl")
    uses_labels: ClassVar[bool] = True
    likelihood = "bernoulli"
    Config = ConditionalVAEConfig

    def __init__(self, config: ConditionalVAEConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        n_pixels = self.input_size
        n_in = n_pixels + (cfg.condition_dim if cfg.encoder_sees_condition else 0)
        self.encoder = mlp([n_in, *cfg.hidden_dims, 2 * cfg.latent_dim], cfg.activation)
        self.decoder = mlp(
            [cfg.latent_dim + cfg.condition_dim, *reversed(cfg.hidden_dims), n_pixels],
            cfg.activation,
        )
        self.prior_net = (
            mlp([cfg.condition_dim, *cfg.hidden_dims, 2 * cfg.latent_dim], cfg.activation)
            if cfg.prior == "learned"
            else None
        )

    # -- shapes -----------------------------------------------------------------------------
    @property
    def condition_dim(self) -> int:
        return int(self.config.condition_dim)

    def _shape_text(self) -> str:
        return ", ".join(map(str, self.input_shape))

    def _check_x(self, x: torch.Tensor, name: str = "x") -> None:
        """Shape, dtype and values (in [0, 1]) of ``(B, *input_shape)`` images."""
        self._check_input(name, x)
        check_unit_interval(name, x, "for a Bernoulli likelihood")

    def _check_c(self, c: torch.Tensor, batch: int | None = None, name: str = "c") -> None:
        """Shape, dtype and finiteness of ``(B, C)`` conditions (``B = batch`` if given)."""
        size = self.condition_dim
        self._check_input(name, c, (size,), sizes=f"condition_dim={size}")
        if batch is not None and c.shape[0] != batch:
            raise ValueError(f"{name} has {c.shape[0]} conditions for {batch} examples")
        check_finite(name, c)

    def _check_mask(
        self, mask: torch.Tensor | None, batch: int, name: str = "mask"
    ) -> torch.Tensor | None:
        """``mask`` expanded to ``(batch, *input_shape)`` (a view), or ``None``."""
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"{name} must be a bool tensor, True at the pixels to predict")
        try:
            return mask.expand(batch, *self.input_shape)
        except RuntimeError as err:
            raise ValueError(
                f"{name} of shape {tuple(mask.shape)} does not broadcast to "
                f"(B={batch}, {self._shape_text()})"
            ) from err

    @staticmethod
    def _flat(mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if mask is None else mask.reshape(mask.shape[0], -1)

    # -- the three networks -----------------------------------------------------------------
    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x, c): ``x (B, *input_shape)`` in [0, 1], ``c (B, C)`` ->
        ``(mu, logvar)``, each ``(B, J)``."""
        self._check_x(x)
        self._check_c(c, x.shape[0])
        return self._encode(x, c)

    def _encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = x.flatten(1)
        if self.config.encoder_sees_condition:
            inputs = torch.cat([inputs, c], dim=1)
        mu, logvar = self.encoder(inputs).chunk(2, dim=-1)
        return mu, logvar

    def prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of p(z | c): ``c (B, C)`` -> ``(mu, logvar)``, each ``(B, J)`` (zeros for
        the standard prior)."""
        self._check_c(c)
        return self._prior(c)

    def _prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prior_net is None:
            zeros = c.new_zeros(c.shape[0], self.latent_dim)
            return zeros, zeros
        mu, logvar = self.prior_net(c).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Logits of p(x | z, c): ``z (..., B, J)`` and ``c (B, C)`` -> ``(..., B, *input_shape)``
        (``torch.sigmoid`` gives pixel probabilities). Leading dimensions of z (several codes
        per condition) share the condition."""
        self._check_c(c)
        arguments.float_tensor("z", z, shape="(..., B, latent_dim)", dtype=self.dtype)
        if z.dim() < 2 or z.shape[-1] != self.latent_dim or z.shape[-2] != c.shape[0]:
            raise ValueError(
                f"z has shape {tuple(z.shape)}; expected (..., B={c.shape[0]}, "
                f"latent_dim={self.latent_dim})"
            )
        check_finite("z", z)
        return self._decode(z, c)

    def _decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([z, c.expand(*z.shape[:-1], c.shape[1])], dim=-1)
        out = self.decoder(inputs.reshape(-1, inputs.shape[-1]))
        return out.reshape(*z.shape[:-1], *self.input_shape)

    # -- densities --------------------------------------------------------------------------
    def log_px_given_z(
        self,
        x: torch.Tensor,
        z: torch.Tensor,
        c: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log p(x | z, c) in nats, summed over the pixels of ``mask`` (all pixels if None).

        Args:
            x: ``(B, *input_shape)`` targets in [0, 1].
            z: ``(..., B, J)`` codes (leading dimensions: several codes per example).
            c: ``(B, C)`` conditions.
            mask: optional bool tensor broadcasting to ``(B, *input_shape)``.

        Returns:
            ``(..., B)`` log-likelihoods.
        """
        self._check_x(x)
        mask = self._check_mask(mask, x.shape[0])
        logits = self.decode(z, c).flatten(start_dim=z.dim() - 1)
        return self._log_likelihood(x, logits, self._flat(mask))

    @staticmethod
    def _log_likelihood(
        x: torch.Tensor, logits: torch.Tensor, mask_flat: torch.Tensor | None
    ) -> torch.Tensor:
        """Bernoulli log-likelihood of ``x (B, ...)`` under ``logits (..., B, P)``, over the
        pixels of ``mask_flat (B, P)`` (all if None): ``(..., B)`` (values unchecked)."""
        pixels = x.flatten(1)
        if mask_flat is None:
            return bernoulli_log_likelihood(pixels, logits)
        per_pixel = pixels.to(logits.dtype) * logits - softplus(logits)  # log p of each pixel
        return (per_pixel * mask_flat).sum(-1)

    # -- the latent-variable protocol of vae_lib.iwae_bound ----------------------------------
    @property
    def iwae_cost(self) -> int:
        """Numbers held per (example, sample) pair: the decoder's outputs, one per pixel."""
        return self.input_size

    def scoring_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(x, c)`` or ``(x, c, mask)`` checked and moved to the model's device and dtype:
        ``x (B, *input_shape)`` in [0, 1], ``c (B, C)`` float conditions (one-hot labels:
        :func:`one_hot`), ``mask`` ``None`` or bool broadcasting to x's shape (True at the
        pixels scored). Returns ``(x, c, mask)`` with the mask expanded to x's shape."""
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise ValueError(
                "a ConditionalVAE scores (x, c) or (x, c, mask): images, their (B, "
                f"{self.condition_dim}) conditions and an optional bool mask; got "
                f"{type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, tuple | list) else "")
            )
        x, c, mask = (*batch, None)[:3]
        arguments.float_tensor("x", x, shape=f"(B, {self._shape_text()})")
        _float_conditions("c", c, self.condition_dim)
        x = x.to(device=self.device, dtype=self.dtype)
        c = c.to(device=self.device, dtype=self.dtype)
        self._check_x(x)
        self._check_c(c, x.shape[0])
        if mask is not None and isinstance(mask, torch.Tensor):
            mask = mask.to(self.device)
        return x, c, self._check_mask(mask, x.shape[0])

    def posterior_params(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x, c), each ``(B, J)``, of a :meth:`scoring_batch`."""
        x, c, _ = batch
        return self._encode(x, c)

    def prior_params(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mu, logvar) of the learned prior p(z | c), each ``(B, J)``; ``None`` for the
        standard prior N(0, I)."""
        if self.prior_net is None:
            return None
        return self._prior(batch[1])

    def log_likelihood(self, batch: tuple, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z, c) over the mask's pixels, ``(S, B)`` for ``z (S, B, J)``, in nats."""
        x, c, mask = batch
        logits = self._decode(z, c).flatten(start_dim=z.dim() - 1)
        return self._log_likelihood(x, logits, self._flat(mask))

    # -- the objective ----------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> ConditionalVAEOutput:
        """One-sample conditional ELBO of each example; see :class:`ConditionalVAEOutput`.

        Args:
            x: ``(B, *input_shape)`` targets in [0, 1].
            c: ``(B, C)`` their conditions.
            mask: optional bool tensor, True at the pixels scored (broadcasts to x's shape).
            beta: weight of the KL term (1 gives the conditional ELBO).
            generator: optional ``torch.Generator`` on the model's device for the draw of z.
        """
        beta = arguments.real("beta", beta, minimum=0.0)
        arguments.generator("generator", generator, self.device)
        self._check_x(x)
        self._check_c(c, x.shape[0])
        mask = self._check_mask(mask, x.shape[0])
        return self._forward(x, c, self._flat(mask), beta, generator)

    def _forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        mask_flat: torch.Tensor | None,
        beta: float,
        generator: torch.Generator | None,
    ) -> ConditionalVAEOutput:
        mu, logvar = self._encode(x, c)
        prior_mu, prior_logvar = self._prior(c)
        z = reparameterize(mu, logvar, generator=generator)
        logits = self._decode(z, c)
        reconstruction = self._log_likelihood(x, logits.flatten(1), mask_flat)
        kl = diagonal_gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        return ConditionalVAEOutput(
            *_elbo_parts(reconstruction, kl, beta),
            z=z,
            mu=mu,
            logvar=logvar,
            prior_mu=prior_mu,
            prior_logvar=prior_logvar,
            decoder_output=logits,
        )

    def loss(self, batch: tuple, run: Run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Minus the mean conditional ELBO of a minibatch ``(x, c, mask)`` (what
        :meth:`batches` yields); the parts are the ELBO, its reconstruction and KL, ``(B,)`` in
        nats, over the mask's pixels."""
        x, c, mask = batch
        out = self._forward(x, c, self._flat(mask), 1.0, run.generator)
        rec, kl = out.reconstruction, out.kl
        return -out.elbo.mean(), {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    # -- the data of fit and evaluate -------------------------------------------------------
    def training_data(self, data: Any, run: Run, *, name: str) -> ConditionalData:
        """``data`` checked once (shapes, dtypes, pixel values in [0, 1], labels in
        ``[0, condition_dim)``, finite conditions) and moved to the model's device; see the
        class docstring for its forms. Validation images (``name="val"``) are binarized once,
        with the run's generator, under ``binarize="dynamic"``."""
        o = run.options
        labels = c = mask = None
        if isinstance(data, torch.Tensor):
            images = data
        elif isinstance(data, tuple | list) and len(data) in (2, 3):
            images, second = data[0], data[1]
            mask = data[2] if len(data) == 3 else None
            if (
                len(data) == 2
                and isinstance(second, torch.Tensor)
                and (not second.is_floating_point() or second.dim() < 2)
            ):
                labels = second  # labels (checked as such); (N, C) float: conditions
            else:
                c = second
        else:
            raise ValueError(
                f"{name} must be (images, labels), images alone (task='quadrants'), or "
                f"(x, c) / (x, c, mask) with the conditions given; got {type(data).__name__}"
                + (f" of length {len(data)}" if isinstance(data, tuple | list) else "")
            )
        what = name if isinstance(data, torch.Tensor) else f"{name} images"
        x = arguments.data_set(what, images, input_shape=self.input_shape, dtype=self.dtype)
        check_unit_interval(what, x, "for a Bernoulli likelihood")
        n = x.shape[0]
        device = self.device
        if c is not None:
            kind = "given"
            _float_conditions(f"{name} conditions", c, self.condition_dim)
            self._check_c(c, n, name=f"{name} conditions")
            c = c.to(device)
            if isinstance(mask, torch.Tensor):
                mask = mask.to(device)
            mask = self._check_mask(mask, n, name=f"{name} mask")
        elif o.task == "labels":
            if labels is None:
                raise ValueError(
                    f"task='labels' needs {name} = (images, labels); for conditions other than "
                    "labels give them: (x, c) or (x, c, mask)"
                )
            kind = "labels"
            labels = _check_labels(f"{name} labels", labels, self.condition_dim, n).to(device)
        else:
            kind = "quadrants"
            self._check_completes_quadrants()
            if labels is not None:  # not used, but they must belong to the images
                _check_labels(f"{name} labels", labels, None, n)
                labels = None
        x = x.to(device)
        if name == "val" and o.binarize == "dynamic":  # drawn once, from the run's generator
            x = torch.bernoulli(x, generator=run.generator)
        return ConditionalData(kind, x, labels, c, mask)

    def _check_completes_quadrants(self) -> None:
        shape, pixels = self.input_shape, self.input_size
        if len(shape) != 3 or shape[0] != 1 or self.condition_dim != pixels:
            raise ValueError(
                f"task='quadrants' needs images (1, H, W) and condition_dim = H * W (the pixels); "
                f"this model has input_shape {shape} and condition_dim {self.condition_dim}"
            )

    def epoch_size(self, data: ConditionalData, run: Run) -> tuple[int, int]:
        n = int(data.x.shape[0])
        return math.ceil(n / run.options.batch_size), n

    def batches(
        self, data: ConditionalData, run: Run
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """One epoch of shuffled minibatches ``(x, c, mask)``: the rows in an order drawn from
        the run's generator; per batch, under ``binarize="dynamic"`` a Bernoulli draw of the
        images, then the condition (one-hot labels; for quadrants a random number of given
        quadrants per image, drawn from the run's generator, and the mask of the missing
        pixels; or the given conditions and mask)."""
        g, size = run.generator, run.options.batch_size
        order = torch.randperm(data.x.shape[0], generator=g, device=g.device)
        for start in range(0, data.x.shape[0], size):
            index = order[start : start + size]
            x = data.x[index]
            if run.options.binarize == "dynamic":
                x = torch.bernoulli(x, generator=g)
            if data.kind == "labels":
                yield x, self._one_hot(data.labels[index]), None
            elif data.kind == "quadrants":
                # the data was checked once by training_data: the unchecked twin
                yield (x, *_observe(x, random_quadrant_counts(x.shape[0], g)))
            else:
                yield x, data.c[index], None if data.mask is None else data.mask[index]

    def _one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), self.condition_dim).to(self.dtype)

    @torch.no_grad()
    def evaluation(
        self, data: ConditionalData, run: Run, batch_size: int = 1000
    ) -> dict[str, float]:
        """Mean one-sample conditional ELBO, reconstruction and KL per example over prepared
        ``data``, in nats, in chunks of ``batch_size`` (z drawn from the run's generator). For
        ``task="quadrants"`` one set per number of given quadrants: ``elbo_1``, ...,
        ``kl_3``."""
        if data.kind == "labels":
            sets = {"": (data.x, self._one_hot(data.labels), None)}
        elif data.kind == "quadrants":
            sets = {f"_{n}": (data.x, *_observe(data.x, n)) for n in QUADRANT_COUNTS}
        else:
            sets = {"": (data.x, data.c, data.mask)}
        values = {}
        n = data.x.shape[0]
        for suffix, (x, c, mask) in sets.items():
            sums = dict.fromkeys(self.curves, 0.0)
            for start in range(0, n, batch_size):
                stop = start + batch_size
                scored = None if mask is None else self._flat(mask[start:stop])
                out = self._forward(x[start:stop], c[start:stop], scored, 1.0, run.generator)
                sums["elbo"] += out.elbo.sum().item()
                sums["reconstruction"] += out.reconstruction.sum().item()
                sums["kl"] += out.kl.sum().item()
            values.update({f"{part}{suffix}": value / n for part, value in sums.items()})
        return values

    # -- using a trained model --------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        c: torch.Tensor | None = None,
        labels: torch.Tensor | int | None = None,
        mean: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate ``n`` times for each condition: z ~ p(z | c), then x from p(x | z, c).

        Give the condition by keyword, either ``c`` or (for a class-conditional model)
        ``labels``, turned into ``one_hot(labels, condition_dim)``.

        Args:
            n: draws per condition (>= 1).
            c: ``(B, C)`` conditions, or one condition ``(C,)``.
            labels: ``(B,)`` integer class indices, or one label (an int).
            mean: return pixel probabilities (the usual way to show samples); ``False``
                draws binary pixels from them.
            generator: optional ``torch.Generator`` on the model's device.

        Returns:
            ``(n, B, *input_shape)`` for B conditions, ``(n, *input_shape)`` for one, on the
            model's device. ``sample(1, c=c)[0]`` is one generation per condition.
        """
        if isinstance(n, torch.Tensor) and n.dim() > 0:
            raise ValueError(
                "sample takes the number of draws first and the condition by keyword: "
                "sample(n, c=conditions) or sample(n, labels=labels), not the conditions first"
            )
        n = arguments.positive_int("n", n)
        mean = arguments.boolean("mean", mean)
        arguments.generator("generator", generator, self.device)
        if (c is None) == (labels is None):
            raise ValueError(
                "sample needs the condition by keyword, one of c=(B, C) conditions or "
                "labels=(B,) class indices"
            )
        if labels is not None:
            single = not isinstance(labels, torch.Tensor) or labels.dim() == 0
            if single:
                label = arguments.integer("labels", labels, minimum=0)
                labels = torch.tensor([label])
            c = one_hot(labels, self.condition_dim).to(device=self.device, dtype=self.dtype)
        else:
            single = isinstance(c, torch.Tensor) and c.dim() == 1
            if single:
                c = c.unsqueeze(0)
            self._check_c(c)
            c = c.to(self.device)
        mu, logvar = self._prior(c)
        z = reparameterize(mu, logvar, generator=generator, n_samples=n)  # (n, B, J)
        probs = torch.sigmoid(self._decode(z, c))
        out = probs if mean else torch.bernoulli(probs, generator=generator)
        return out[:, 0] if single else out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of p(x | z, c) at z = the mean of q(z | x, c), ``(B, ...)``."""
        mu, _ = self.encode(x, c)
        return torch.sigmoid(self._decode(mu, c))


def _float_conditions(name: str, c: Any, condition_dim: int) -> None:
    """A clear message for conditions that are not a float tensor (labels given as c)."""
    if isinstance(c, torch.Tensor) and not c.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point (B, {condition_dim}) tensor of conditions, got "
            f"dtype {c.dtype}; for class labels pass one_hot(labels, {condition_dim})"
        )
    arguments.float_tensor(name, c, shape=f"(B, {condition_dim})")
