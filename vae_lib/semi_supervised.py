"""Labels as a latent variable: semi-supervised learning with Kingma et al. (2014)'s model M2.

M2 is a VAE with two latent variables, the class y (discrete) and the style z (continuous):

    p(y) = uniform over K classes,   p(z) = N(0, I),   p(x | y, z) a decoder of (y, z),

with an encoder q(z | x, y) and a *classifier* q(y | x). Where y is observed, the ELBO is
chapter 3's with y given (:meth:`SemiSupervisedVAE.labelled_elbo`),

    log p(x, y) >= L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) - KL(q(z | x, y) || p(z)),

and where it is not, y is summed out under the classifier (:meth:`unlabelled_elbo`),

    log p(x) >= U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)).

The classifier appears in U only, so labelled examples would not train it: the objective adds
alpha times the labelled examples' log q(y | x) (:func:`semi_supervised_loss`). After training,
q(y | x) is the classifier.

Kingma et al. run M2 on pixels (88.0 % test accuracy with 100 labels) and on the features of a
VAE trained first on all images, their "M1" (96.7 %). Here x is such a feature vector: a draw
z1 ~ q(z1 | image) from the posterior of a zoo VAE (whose mean and log-variance
:func:`vae_features` computes), redrawn at every training step and replaced by the posterior
mean at test time; p(x | y, z) is a diagonal Gaussian.

Training takes the features of all training images and all their labels, of which only
``labels_per_class`` of each class are read (:func:`few_labels`)::

    vae, _ = zoo.load("mnist_vae")                      # the VAE whose posterior gives x
    m2 = SemiSupervisedVAE(SemiSupervisedVAEConfig(input_dim=32, feature_model="mnist_vae"))
    history = fit(
        m2,
        (*vae_features(vae, train.images), train.labels),  # mu, logvar (N, 32); labels (N,)
        val=(*vae_features(vae, val.images), val.labels),
        epochs=100,
        labels_per_class=10,
    )
    accuracy = accuracy_on_images(m2, vae, test.images, test.labels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from . import arguments
from .checks import check_finite, check_unit_interval, value_checks_enabled
from .distributions import gaussian_kl, gaussian_log_likelihood, reparameterize
from .training import FitOptions, Run, Trainable, eval_mode
from .vae import ACTIVATIONS, VAEBase, mlp

#: The tensor types that hold class indices.
_LABEL_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _check_labels(
    name: str,
    labels: Any,
    *,
    n: int | None = None,
    n_classes: int | None = None,
) -> torch.Tensor:
    """``labels`` if it is a ``(n,)`` integer tensor of class indices in ``[0, n_classes)``
    (``>= 0`` when ``n_classes`` is None); otherwise a ``ValueError`` naming ``name``. The
    range is a value check, skipped inside :func:`vae_lib.checks.skip_value_checks`."""
    what = "a 1-D integer tensor of class indices" + (f", shape ({n},)" if n is not None else "")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be {what}, got {type(labels).__name__}")
    if labels.dtype not in _LABEL_DTYPES:
        raise ValueError(f"{name} must be {what}, got a tensor of dtype {labels.dtype}")
    if labels.dim() != 1 or (n is not None and labels.shape[0] != n):
        hint = ""
        if labels.dim() == 2 and labels.shape[1] == 1:
            hint = " (for (N, 1) labels pass labels.flatten())"
        elif labels.dim() == 2:
            hint = " (for one-hot labels pass labels.argmax(1))"
        raise ValueError(f"{name} has shape {tuple(labels.shape)}; expected {what}{hint}")
    if labels.numel() and value_checks_enabled():
        low, high = (int(v) for v in torch.aminmax(labels))
        if low < 0 or (n_classes is not None and high >= n_classes):
            where = f"lie in [0, {n_classes})" if n_classes is not None else "be >= 0"
            raise ValueError(f"{name} must {where} (class indices); got {low}..{high}")
    return labels


@dataclass(frozen=True)
class SemiSupervisedVAEConfig:
    """Settings of a :class:`SemiSupervisedVAE` (model M2, MLP networks).

    Attributes:
        input_dim: D, the length of one feature vector x (the feature VAE's latent_dim).
        n_classes: K, the number of classes y.
        hidden_dims: widths of the hidden layers of the encoder q(z | x, y); the decoder
            p(x | y, z) mirrors them.
        latent_dim: J, the dimension of the style z.
        classifier_hidden_dims: widths of the hidden layers of the classifier q(y | x).
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
        feature_model: the name of the zoo VAE whose posterior gives the features. The model
            never loads it (the zoo does, and passes it to :func:`vae_features`); it is kept
            here as a record, and the zoo's fingerprint of the config covers it.
    """

    input_dim: int = 32
    n_classes: int = 10
    hidden_dims: tuple[int, ...] = (500,)
    latent_dim: int = 16
    classifier_hidden_dims: tuple[int, ...] = (500,)
    activation: str = "softplus"
    feature_model: str = "mnist_vae"

    def __post_init__(self) -> None:
        for name in ("input_dim", "n_classes", "latent_dim"):
            object.__setattr__(self, name, arguments.positive_int(name, getattr(self, name)))
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        for name in ("hidden_dims", "classifier_hidden_dims"):
            value = arguments.positive_ints(name, getattr(self, name), allow_empty=True)
            object.__setattr__(self, name, value)
        arguments.one_of("activation", self.activation, tuple(ACTIVATIONS))
        if not isinstance(self.feature_model, str) or not self.feature_model:
            raise ValueError("feature_model must name a zoo VAE")


@dataclass(frozen=True)
class SemiSupervisedOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`SemiSupervisedVAE`.

    Each step takes ``batch_size`` feature rows of the training set (all treated as unlabelled)
    and ``labelled_batch_size`` draws, with replacement, of its few labelled rows, and one
    Adam step on :func:`semi_supervised_loss`; an epoch is one pass over the unlabelled rows.

    Attributes:
        batch_size: unlabelled examples per step (256).
        lr_schedule: ``"cosine"`` by default (the learning rate falls to 0 at the last step).
        labels_per_class: how many labels of each class are kept (:func:`few_labels`); the
            others are never read.
        label_seed: the seed of :func:`few_labels`'s choice of them.
        use_unlabelled: ``False`` trains the supervised baseline: the same networks on the
            labelled draws alone (the U term is left out; an epoch keeps its number of steps).
        alpha: weight of the labelled examples' log q(y | x), per labelled example (>= 0).
        labelled_weight: weight of the labelled ELBO; ``None`` is the labelled share of the
            training rows, which makes the loss Kingma et al.'s objective per image (their
            alpha = 0.1 N is then ``alpha`` = 0.1 times the number of labels).
        labelled_batch_size: labelled draws per step.
    """

    batch_size: int = 256
    lr_schedule: str | None = "cosine"
    labels_per_class: int = 10
    label_seed: int = 0
    use_unlabelled: bool = True
    alpha: float = 10.0
    labelled_weight: float | None = None
    labelled_batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set(
            "labels_per_class", arguments.positive_int("labels_per_class", self.labels_per_class)
        )
        self._set("label_seed", arguments.seed("label_seed", self.label_seed))
        self._set("use_unlabelled", arguments.boolean("use_unlabelled", self.use_unlabelled))
        self._set("alpha", arguments.real("alpha", self.alpha, minimum=0.0))
        if self.labelled_weight is not None:
            weight = arguments.real("labelled_weight", self.labelled_weight, minimum=0.0)
            self._set("labelled_weight", weight)
        self._set(
            "labelled_batch_size",
            arguments.positive_int("labelled_batch_size", self.labelled_batch_size),
        )


class _Features(NamedTuple):
    """A prepared data set: ``mu``, ``logvar`` ``(N, D)`` (the feature VAE's posterior) and
    ``labels`` ``(N,)`` (int64), on the model's device."""

    mu: torch.Tensor
    logvar: torch.Tensor
    labels: torch.Tensor


class _Batch(NamedTuple):
    """One training step's data: the unlabelled rows ``mu``, ``logvar`` ``(B, D)``, the whole
    labelled set ``labelled_mu``, ``labelled_logvar`` ``(L, D)`` and ``labels`` ``(L,)`` (the
    step draws from it), and the weight of the labelled ELBO."""

    mu: torch.Tensor
    logvar: torch.Tensor
    labelled_mu: torch.Tensor
    labelled_logvar: torch.Tensor
    labels: torch.Tensor
    labelled_weight: float


class SemiSupervisedVAE(Trainable):
    """Model M2 of Kingma et al. (2014) on feature vectors: q(y | x), q(z | x, y), p(x | y, z).

    Example::

        model = SemiSupervisedVAE(SemiSupervisedVAEConfig(input_dim=32))
        logits = model.classify(x)                  # (B, K) logits of q(y | x)
        L = model.labelled_elbo(x, y)               # (B,) nats, y observed
        U = model.unlabelled_elbo(x)                # (B,) nats, y summed out

    Trained by :func:`vae_lib.fit` on ``(mu, logvar, labels)`` (:func:`vae_features` of the
    images, and all their labels, of which only :func:`few_labels` are read), with the options
    :class:`SemiSupervisedOptions`. The history's curves are ``train_loss``,
    ``train_labelled_elbo``, ``train_unlabelled_elbo`` and ``train_log_q_label`` (per
    unlabelled row, nats) and, with validation data, ``val_accuracy`` (q(y | x) at the
    posterior means, a fraction).
    """

    Options = SemiSupervisedOptions
    curves = ("loss", "labelled_elbo", "unlabelled_elbo", "log_q_label")
    Config = SemiSupervisedVAEConfig

    def __init__(self, config: SemiSupervisedVAEConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        d, k, j = cfg.input_dim, cfg.n_classes, cfg.latent_dim
        self.classifier = mlp([d, *cfg.classifier_hidden_dims, k], cfg.activation)
        self.encoder = mlp([d + k, *cfg.hidden_dims, 2 * j], cfg.activation)
        self.decoder = mlp([j + k, *reversed(cfg.hidden_dims), 2 * d], cfg.activation)

    @property
    def n_classes(self) -> int:
        """K, the number of classes."""
        return int(self.config.n_classes)

    @property
    def input_dim(self) -> int:
        """D, the length of a feature vector x."""
        return int(self.config.input_dim)

    # -- argument checks ------------------------------------------------------------------
    def _check_x(self, x: torch.Tensor, name: str = "x") -> None:
        d = self.input_dim
        self._check_input(name, x, (d,), sizes=f"input_dim={d}")
        check_finite(name, x, "(features of the feature VAE)")

    def _check_y(self, y: torch.Tensor, like: torch.Tensor, name: str = "y") -> None:
        _check_labels(name, y, n=like.shape[0], n_classes=self.n_classes)
        if y.device != like.device:
            raise ValueError(f"{name} is on {y.device} but its inputs are on {like.device}")

    # -- the networks (unchecked twins, used by the training steps) ------------------------
    def _one_hot(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.one_hot(y.long(), self.n_classes).to(dtype)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def _encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.cat([x, self._one_hot(y, x.dtype)], dim=1)
        mu, logvar = self.encoder(inputs).chunk(2, dim=-1)
        return mu, logvar

    def _decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.cat([z, self._one_hot(y, z.dtype)], dim=1)
        mean, logvar = self.decoder(inputs).chunk(2, dim=-1)
        return mean, logvar

    def _labelled_elbo(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        mu, logvar = self._encode(x, y)
        z = reparameterize(mu, logvar, generator=generator)
        mean, out_logvar = self._decode(z, y)
        log_py = -math.log(self.n_classes)
        return gaussian_log_likelihood(x, mean, out_logvar) + log_py - gaussian_kl(mu, logvar)

    def _unlabelled_elbo(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        b, k = x.shape[0], self.n_classes
        log_q = F.log_softmax(self._classify(x), dim=-1)  # (B, K)
        classes = torch.arange(k, device=x.device).repeat_interleave(b)  # (K*B,)
        elbo = self._labelled_elbo(x.repeat(k, 1), classes, generator).reshape(k, b).T  # (B, K)
        q = log_q.exp()
        return (q * (elbo - log_q)).sum(-1)

    # -- public, checked ---------------------------------------------------------------------
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x): ``(B, D)`` -> ``(B, K)``."""
        self._check_x(x)
        return self._classify(x)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x, y): ``(B, D)``, ``(B,)`` class indices -> ``(mu, logvar)``,
        each ``(B, J)``."""
        self._check_x(x)
        self._check_y(y, x)
        return self._encode(x, y)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the Gaussian p(x | y, z): ``(B, J)``, ``(B,)`` -> two
        ``(B, D)`` tensors."""
        self._check_z(z)
        check_finite("z", z)
        self._check_y(y, z)
        return self._decode(z, y)

    def labelled_elbo(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """L(x, y) <= log p(x, y), one reparameterized z per example: ``(B, D)``, ``(B,)``
        -> ``(B,)`` nats."""
        self._check_x(x)
        self._check_y(y, x)
        arguments.generator("generator", generator, x.device)
        return self._labelled_elbo(x, y, generator)

    def unlabelled_elbo(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)) <= log p(x): ``(B, D)`` -> ``(B,)``
        nats. L(x, y) is computed for every class, with its own draw of z (the draws are made
        for class 0 of every example first, then class 1, and so on)."""
        self._check_x(x)
        arguments.generator("generator", generator, x.device)
        return self._unlabelled_elbo(x, generator)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
        """The most probable class under q(y | x): ``(N, D)`` (finite) -> ``(N,)`` int64 on
        the model's device, computed in chunks of ``batch_size`` rows in eval mode."""
        batch_size = arguments.positive_int("batch_size", batch_size)
        self._check_x(x)
        check_finite("x", x, "(a NaN feature has no class)")
        with eval_mode(self):
            return torch.cat(
                [self._classify(xb.to(self.device)).argmax(-1) for xb in x.split(batch_size)]
            )

    # -- the model contract of vae_lib.fit -----------------------------------------------------
    def training_data(self, data: Any, run: Run, *, name: str) -> _Features:
        """``(mu, logvar, labels)`` checked and moved to the model's device: ``mu`` and
        ``logvar`` ``(N, D)`` finite, of the model's dtype (:func:`vae_features`), ``labels``
        ``(N,)`` integer class indices in ``[0, K)`` (made int64)."""
        if not isinstance(data, tuple | list) or len(data) != 3:
            what = type(data).__name__ if not isinstance(data, tuple | list) else len(data)
            raise ValueError(
                f"{name} must be (mu, logvar, labels): the feature VAE's posterior of the images "
                f"(vae_features(vae, images)) and their labels, got {what}"
                + (" items" if isinstance(data, tuple | list) else "")
            )
        mu, logvar, labels = data
        d = self.input_dim
        if isinstance(mu, torch.Tensor) and mu.dim() == 2 and mu.shape[1] != d:
            raise ValueError(
                f"{name} mu has {mu.shape[1]} features per example but the model's input_dim is "
                f"{d}: the features must come from a VAE with latent_dim {d} "
                f"(config.feature_model is {self.config.feature_model!r})"
            )
        arguments.data_set(f"{name} mu", mu, input_shape=(d,), dtype=self.dtype)
        arguments.float_tensor(f"{name} logvar", logvar, shape=f"(N, {d})", dtype=self.dtype)
        if logvar.shape != mu.shape:
            raise ValueError(
                f"{name} logvar has shape {tuple(logvar.shape)}; expected that of mu, "
                f"{tuple(mu.shape)}"
            )
        _check_labels(f"{name} labels", labels, n=mu.shape[0], n_classes=self.n_classes)
        check_finite(f"{name} mu", mu)
        check_finite(f"{name} logvar", logvar)
        device = self.device
        return _Features(mu.to(device), logvar.to(device), labels.to(device, torch.long))

    def start_training(self, data: _Features, run: Run) -> dict[str, torch.Tensor]:
        """The rows whose labels are used, :func:`few_labels` with ``labels_per_class`` and
        ``label_seed`` (kept by a checkpoint as ``labelled_index``)."""
        o = run.options
        try:
            index = few_labels(data.labels, o.labels_per_class, o.label_seed)
        except ValueError as err:
            raise ValueError(f"labels_per_class={o.labels_per_class}: {err}") from err
        return {"labelled_index": index.to(data.labels.device)}

    def batches(self, data: _Features, run: Run):
        """Shuffled rows of ``data`` (an order drawn from the run's generator), each with the
        labelled set the step draws from."""
        o = run.options
        index = run.tensors["labelled_index"]
        labelled = (data.mu[index], data.logvar[index], data.labels[index])
        n = data.mu.shape[0]
        weight = o.labelled_weight if o.labelled_weight is not None else len(index) / n
        order = torch.randperm(n, generator=run.generator, device=data.mu.device)
        for start in range(0, n, o.batch_size):
            rows = order[start : start + o.batch_size]
            yield _Batch(data.mu[rows], data.logvar[rows], *labelled, weight)

    def loss(self, batch: _Batch, run: Run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`semi_supervised_loss` of one step, with fresh draws from the run's generator,
        in this order: the labelled rows (with replacement), x ~ q(z1 | image) for them, x for
        the unlabelled rows (drawn also when ``use_unlabelled`` is False), then the loss's z.

        The parts are ``(B,)`` for the B unlabelled rows, each the step's value (the labelled
        terms are means over the labelled draws), so the epoch's curves are the mean step
        values weighted by the number of unlabelled rows."""
        o, g = run.options, run.generator
        pick = torch.randint(
            batch.labels.shape[0], (o.labelled_batch_size,), generator=g, device=batch.mu.device
        )
        x_l = reparameterize(batch.labelled_mu[pick], batch.labelled_logvar[pick], generator=g)
        x_u = reparameterize(batch.mu, batch.logvar, generator=g)
        parts = _semi_supervised_loss(
            self,
            x_l,
            batch.labels[pick],
            x_u if o.use_unlabelled else None,
            o.alpha,
            g,
            batch.labelled_weight,
        )
        n = batch.mu.shape[0]
        return parts["loss"], {c: parts[c].expand(n) for c in self.curves}

    @torch.no_grad()
    def evaluation(self, data: _Features, run: Run, batch_size: int = 10_000) -> dict[str, float]:
        """``{"accuracy": ...}``: the fraction of ``data``'s labels that q(y | x) gets right at
        x = the posterior means (its most probable class), in chunks of ``batch_size``."""
        predicted = torch.cat([self._classify(xb).argmax(-1) for xb in data.mu.split(batch_size)])
        return {"accuracy": (predicted == data.labels).float().mean().item()}


def _semi_supervised_loss(
    model: SemiSupervisedVAE,
    labelled_x: torch.Tensor,
    labels: torch.Tensor,
    unlabelled_x: torch.Tensor | None,
    alpha: float,
    generator: torch.Generator | None,
    labelled_weight: float,
) -> dict[str, torch.Tensor]:
    labelled = model._labelled_elbo(labelled_x, labels, generator).mean()
    log_q_label = -F.cross_entropy(model._classify(labelled_x), labels)
    unlabelled = (
        model._unlabelled_elbo(unlabelled_x, generator).mean()
        if unlabelled_x is not None
        else labelled.new_zeros(())
    )
    loss = -labelled_weight * labelled - unlabelled - alpha * log_q_label
    return {
        "loss": loss,
        "labelled_elbo": labelled,
        "unlabelled_elbo": unlabelled,
        "log_q_label": log_q_label,
    }


def semi_supervised_loss(
    model: SemiSupervisedVAE,
    labelled_x: torch.Tensor,
    labels: torch.Tensor,
    unlabelled_x: torch.Tensor | None,
    alpha: float,
    generator: torch.Generator | None = None,
    labelled_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The minibatch objective of M2 (to minimise) and its parts, each a scalar in nats:

        loss = -w * mean L(labelled) - mean U(unlabelled) - alpha * mean log q(y | x) (labelled)

    with w = ``labelled_weight``: the share of labelled images in the data set makes the loss
    the objective of Kingma et al. divided by the number of images.

    Args:
        model: a :class:`SemiSupervisedVAE`.
        labelled_x: ``(B_l, D)`` features of labelled examples (B_l >= 1).
        labels: ``(B_l,)`` their class indices, in ``[0, K)``, on the same device.
        unlabelled_x: ``(B_u, D)`` features of unlabelled examples (B_u >= 1), or ``None``,
            which drops the U term; with ``alpha`` > 0 and the L term it leaves, only the
            classifier term trains q(y | x): the supervised baseline.
        alpha: weight of the classification term (>= 0).
        generator: optional ``torch.Generator`` on the model's device for the draws of z.
        labelled_weight: w (>= 0).

    Returns:
        ``loss``, ``labelled_elbo``, ``unlabelled_elbo`` (0 without unlabelled data) and
        ``log_q_label`` (the labelled examples' mean log q(y | x)).
    """
    if not isinstance(model, SemiSupervisedVAE):
        raise ValueError(f"model must be a SemiSupervisedVAE, got {type(model).__name__}")
    alpha = arguments.real("alpha", alpha, minimum=0.0)
    labelled_weight = arguments.real("labelled_weight", labelled_weight, minimum=0.0)
    model._check_x(labelled_x, "labelled_x")
    if labelled_x.shape[0] == 0:
        raise ValueError("labelled_x must hold at least one example")
    model._check_y(labels, labelled_x, "labels")
    if unlabelled_x is not None:
        model._check_x(unlabelled_x, "unlabelled_x")
        if unlabelled_x.shape[0] == 0:
            raise ValueError(
                "unlabelled_x must hold at least one example (None leaves the U term out)"
            )
    arguments.generator("generator", generator, labelled_x.device)
    return _semi_supervised_loss(
        model, labelled_x, labels.long(), unlabelled_x, alpha, generator, labelled_weight
    )


def few_labels(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class present in ``labels``, drawn without
    replacement from a CPU generator seeded ``seed``: ``(N,)`` integer class indices (>= 0,
    N >= 1) -> ``(per_class * K,)`` sorted int64 indices on the CPU, K the number of classes
    present. A class with fewer than ``per_class`` examples is a ``ValueError``."""
    per_class = arguments.positive_int("per_class", per_class)
    seed = arguments.seed("seed", seed)
    _check_labels("labels", labels)
    if labels.shape[0] == 0:
        raise ValueError("labels must hold at least one label, got an empty tensor")
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for k in torch.unique(labels).tolist():
        members = torch.nonzero(labels == k).flatten()
        if len(members) < per_class:
            raise ValueError(f"class {k} has {len(members)} examples, fewer than {per_class}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def _check_feature_vae(vae: Any) -> VAEBase:
    if not isinstance(vae, VAEBase):
        raise ValueError(
            "vae must be the feature VAE, a vae_lib VAE or ConvVAE whose q(z | x) gives the "
            f"features (zoo.load(model.config.feature_model)), got {type(vae).__name__}"
        )
    return vae


def _check_images(vae: VAEBase, images: Any) -> torch.Tensor:
    arguments.data_set("images", images, input_shape=vae.input_shape, dtype=vae.dtype)
    check_unit_interval("images", images, "(grey levels: divide 8-bit pixels by 255)")
    return images


@torch.no_grad()
def vae_features(
    vae: VAEBase, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """M1's features of ``images``: the posterior mean and log-variance of ``vae`` (the model's
    feature VAE, for chapter 7 the zoo's ``mnist_vae``).

    Args:
        vae: a :class:`vae_lib.VAE` or :class:`vae_lib.ConvVAE`.
        images: ``(N, *vae.input_shape)`` grey levels in [0, 1], N >= 1, of the VAE's dtype.
        batch_size: images per encoder pass.

    Returns:
        ``(mu, logvar)``, each ``(N, J1)`` on the CPU, J1 the VAE's latent_dim.
    """
    vae = _check_feature_vae(vae)
    batch_size = arguments.positive_int("batch_size", batch_size)
    return _vae_features(vae, _check_images(vae, images), batch_size)


def _vae_features(
    vae: VAEBase, images: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [vae._encode(xb.to(vae.device)) for xb in images.split(batch_size)]
    return torch.cat([p[0] for p in parts]).cpu(), torch.cat([p[1] for p in parts]).cpu()


@torch.no_grad()
def accuracy_on_images(
    model: SemiSupervisedVAE, vae: VAEBase, images: torch.Tensor, labels: torch.Tensor
) -> float:
    """Accuracy of q(y | x) on ``images`` ``(N, 1, 28, 28)`` (grey levels in [0, 1]) with
    ``labels`` ``(N,)``, x the posterior means of ``vae``, the model's feature VAE (the one
    ``model.config.feature_model`` names): a fraction."""
    if not isinstance(model, SemiSupervisedVAE):
        raise ValueError(f"model must be a SemiSupervisedVAE, got {type(model).__name__}")
    vae = _check_feature_vae(vae)
    images = _check_images(vae, images)
    _check_labels("labels", labels, n=images.shape[0], n_classes=model.n_classes)
    if vae.latent_dim != model.input_dim:
        raise ValueError(
            f"vae gives {vae.latent_dim} features but the model's input_dim is "
            f"{model.input_dim}: pass its feature VAE, {model.config.feature_model!r}"
        )
    mu, _ = _vae_features(vae, images, 1000)
    return (model.predict(mu).cpu() == labels.cpu()).float().mean().item()
