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
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import arguments
from .conditional import one_hot
from .distributions import gaussian_kl, gaussian_log_likelihood, reparameterize
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .training import cosine_schedule, make_adam
from .vae import ACTIVATIONS, mlp


@dataclass(frozen=True)
class SemiSupervisedVAEConfig:
    """Settings of a :class:`SemiSupervisedVAE` (model M2, MLP networks).

    Attributes:
        input_dim: D, the length of one feature vector x.
        n_classes: K, the number of classes y.
        hidden_dims: widths of the hidden layers of the encoder q(z | x, y); the decoder
            p(x | y, z) mirrors them.
        latent_dim: J, the dimension of the style z.
        classifier_hidden_dims: widths of the hidden layers of the classifier q(y | x).
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
        feature_model: the zoo VAE whose posterior gives the features (:func:`vae_features`).
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


class SemiSupervisedVAE(nn.Module):
    """Model M2 of Kingma et al. (2014) on feature vectors: q(y | x), q(z | x, y), p(x | y, z).

    Example::

        model = SemiSupervisedVAE(SemiSupervisedVAEConfig(input_dim=32))
        logits = model.classify(x)                  # (B, K) logits of q(y | x)
        L = model.labelled_elbo(x, y)               # (B,) nats, y observed
        U = model.unlabelled_elbo(x)                # (B,) nats, y summed out
    """

    def __init__(self, config: SemiSupervisedVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else SemiSupervisedVAEConfig()
        cfg = self.config
        d, k, j = cfg.input_dim, cfg.n_classes, cfg.latent_dim
        self.classifier = mlp([d, *cfg.classifier_hidden_dims, k], cfg.activation)
        self.encoder = mlp([d + k, *cfg.hidden_dims, 2 * j], cfg.activation)
        self.decoder = mlp([j + k, *reversed(cfg.hidden_dims), 2 * d], cfg.activation)

    @property
    def n_classes(self) -> int:
        return int(self.config.n_classes)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_x(self, x: torch.Tensor) -> None:
        d = self.config.input_dim
        arguments.float_tensor("x", x, shape=f"(B, {d})")
        if x.dim() != 2 or x.shape[1] != d:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, input_dim={d})")

    def _one_hot(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        if isinstance(y, torch.Tensor) and y.shape != (batch,):
            raise ValueError(f"y has shape {tuple(y.shape)}; expected ({batch},)")
        return one_hot(y, self.n_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | x): ``(B, D)`` -> ``(B, K)``."""
        self._check_x(x)
        return self.classifier(x)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x, y): ``(B, D)``, ``(B,)`` -> ``(mu, logvar)``, each ``(B, J)``."""
        self._check_x(x)
        inputs = torch.cat([x, self._one_hot(y, x.shape[0]).to(x.dtype)], dim=1)
        mu, logvar = self.encoder(inputs).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the Gaussian p(x | y, z): ``(B, J)``, ``(B,)`` -> two
        ``(B, D)`` tensors."""
        inputs = torch.cat([z, self._one_hot(y, z.shape[0]).to(z.dtype)], dim=1)
        mean, logvar = self.decoder(inputs).chunk(2, dim=-1)
        return mean, logvar

    def labelled_elbo(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """L(x, y) <= log p(x, y), one reparameterized z per example: ``(B,)`` nats."""
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar, generator=generator)
        mean, out_logvar = self.decode(z, y)
        log_py = -math.log(self.n_classes)
        return gaussian_log_likelihood(x, mean, out_logvar) + log_py - gaussian_kl(mu, logvar)

    def unlabelled_elbo(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)) <= log p(x): ``(B,)`` nats. L(x, y) is
        computed for every class, with its own draw of z (the draws are made for class 0 of
        every example first, then class 1, and so on)."""
        self._check_x(x)
        b, k = x.shape[0], self.n_classes
        log_q = F.log_softmax(self.classify(x), dim=-1)  # (B, K)
        classes = torch.arange(k, device=x.device).repeat_interleave(b)  # (K*B,)
        elbo = self.labelled_elbo(x.repeat(k, 1), classes, generator).reshape(k, b).T  # (B, K)
        q = log_q.exp()
        return (q * (elbo - log_q)).sum(-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
        """The most probable class under q(y | x): ``(N, D)`` -> ``(N,)`` integers."""
        was_training = self.training
        self.eval()
        out = torch.cat(
            [self.classify(xb.to(self.device)).argmax(-1) for xb in x.split(batch_size)]
        )
        self.train(was_training)
        return out


def semi_supervised_loss(
    model: SemiSupervisedVAE,
    labelled_x: torch.Tensor,
    labels: torch.Tensor,
    unlabelled_x: torch.Tensor | None,
    alpha: float,
    generator: torch.Generator | None = None,
    labelled_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The minibatch objective of M2 (to minimise) and its parts, each a scalar:

        loss = -w * mean L(labelled) - mean U(unlabelled) - alpha * mean log q(y | x) (labelled)

    with w = ``labelled_weight``: the share of labelled images in the data set makes the loss
    the objective of Kingma et al. divided by the number of images.

    ``unlabelled_x=None`` drops the U term; with ``alpha`` > 0 and the L term it leaves, only
    the classifier term trains q(y | x): the supervised baseline. Returns ``loss``,
    ``labelled_elbo``, ``unlabelled_elbo`` (0 without unlabelled data) and
    ``log_q_label`` (the labelled examples' mean log q(y | x)).
    """
    alpha = arguments.real("alpha", alpha, minimum=0.0)
    labelled_weight = arguments.real("labelled_weight", labelled_weight, minimum=0.0)
    labelled = model.labelled_elbo(labelled_x, labels, generator).mean()
    log_q_label = -F.cross_entropy(model.classify(labelled_x), labels)
    unlabelled = (
        model.unlabelled_elbo(unlabelled_x, generator).mean()
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


def few_labels(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class, drawn without replacement from a CPU
    generator seeded ``seed``: ``(N,)`` labels -> ``(per_class * K,)`` sorted indices."""
    per_class = arguments.positive_int("per_class", per_class)
    generator = torch.Generator().manual_seed(arguments.seed("seed", seed))
    chosen = []
    for k in torch.unique(labels.cpu()).tolist():
        members = torch.nonzero(labels.cpu() == k).flatten()
        if len(members) < per_class:
            raise ValueError(f"class {k} has {len(members)} examples, fewer than {per_class}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


@torch.no_grad()
def vae_features(
    images: torch.Tensor, feature_model: str = "mnist_vae", batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """M1's features of ``images (N, 1, 28, 28)`` (grey levels): the posterior mean and
    log-variance of the zoo VAE ``feature_model``, each ``(N, J1)`` on the CPU."""
    from . import zoo

    vae, _ = zoo.load(feature_model, "cpu")
    parts = [vae.encode(xb) for xb in images.cpu().split(arguments.positive_int("bs", batch_size))]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def accuracy_on_images(model: SemiSupervisedVAE, images: torch.Tensor, labels: torch.Tensor):
    """Test accuracy of q(y | x) on ``images`` through the model's feature VAE (posterior
    means as x), a fraction."""
    mu, _ = vae_features(images, model.config.feature_model)
    return (model.predict(mu).cpu() == labels.cpu()).float().mean().item()


#: The training curves of :func:`fit_semi_supervised`, nats per example (``train_loss`` the
#: objective; ``train_log_q_label`` the labelled examples' log q(y | x)).
SEMI_SUPERVISED_CURVES = (
    "train_loss",
    "train_labelled_elbo",
    "train_unlabelled_elbo",
    "train_log_q_label",
)


def fit_semi_supervised(
    model: SemiSupervisedVAE,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    *,
    epochs: int,
    labels_per_class: int = 10,
    label_seed: int = 0,
    use_unlabelled: bool = True,
    alpha: float = 10.0,
    labelled_weight: float | None = None,
    batch_size: int = 256,
    labelled_batch_size: int = 100,
    lr: float = 1e-3,
    val_x: torch.Tensor | None = None,
    val_y: torch.Tensor | None = None,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train M2 on the features of ``train_x`` with only ``labels_per_class`` labels per class.

    The features are the posterior of the model's ``feature_model`` (:func:`vae_features`);
    every step draws a fresh x ~ q(z1 | image) for a minibatch of ``batch_size`` images (all
    treated as unlabelled) and ``labelled_batch_size`` of the few labelled ones (drawn with
    replacement), and takes an Adam step on :func:`semi_supervised_loss`. An epoch is one pass
    over the unlabelled images. ``use_unlabelled=False`` trains the supervised baseline: the
    same networks on the labelled examples alone (an epoch is then as many steps as it would
    be with them).

    Args:
        model: a :class:`SemiSupervisedVAE`.
        train_x: ``(N, 1, 28, 28)`` grey images; train_y: ``(N,)`` their labels, of which only
            those of :func:`few_labels` (``labels_per_class``, ``label_seed``) are used.
        val_x, val_y: optional validation images and labels; ``val_accuracy`` after each epoch.
        epochs, batch_size, labelled_batch_size, lr: the schedule.
        alpha, labelled_weight: the weights of the classification term and of the labelled
            ELBO (:func:`semi_supervised_loss`); ``labelled_weight=None`` is the labelled share
            of the images, which makes the loss Kingma et al.'s objective per image (their
            alpha = 0.1 N is then ``alpha`` = 0.1 times the number of labels).
        progress, seed, checkpoint, checkpoint_seconds: as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` with :data:`SEMI_SUPERVISED_CURVES` (and ``val_accuracy``).
    """
    if not isinstance(model, SemiSupervisedVAE):
        raise ValueError(f"model must be a SemiSupervisedVAE, got {type(model).__name__}")
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    labelled_batch_size = arguments.positive_int("labelled_batch_size", labelled_batch_size)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    alpha = arguments.real("alpha", alpha, minimum=0.0)
    seed = arguments.seed("seed", seed)
    use_unlabelled = arguments.boolean("use_unlabelled", use_unlabelled)
    if train_y is None or train_y.shape != (train_x.shape[0],):
        raise ValueError("train_y must hold one label per training image")
    labelled_index = few_labels(train_y, labels_per_class, label_seed)
    if labelled_weight is None:
        labelled_weight = len(labelled_index) / train_x.shape[0]
    labelled_weight = arguments.real("labelled_weight", labelled_weight, minimum=0.0)
    device = model.device
    mu, logvar = (t.to(device) for t in vae_features(train_x, model.config.feature_model))
    if mu.shape[1] != model.config.input_dim:
        raise ValueError(
            f"{model.config.feature_model} gives {mu.shape[1]} features; the model's "
            f"input_dim is {model.config.input_dim}"
        )
    y_labelled = train_y[labelled_index].to(device)
    mu_l, logvar_l = mu[labelled_index], logvar[labelled_index]
    val_features = None
    if val_x is not None:
        val_features = vae_features(val_x, model.config.feature_model)[0].to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = make_adam(model.parameters(), lr)
    n_batches = math.ceil(mu.shape[0] / batch_size)
    scheduler = cosine_schedule(optimizer, epochs * n_batches)
    history = History(
        settings={
            "epochs": epochs,
            "labels_per_class": labels_per_class,
            "label_seed": label_seed,
            "use_unlabelled": use_unlabelled,
            "alpha": alpha,
            "labelled_weight": labelled_weight,
            "batch_size": batch_size,
            "labelled_batch_size": labelled_batch_size,
            "lr": lr,
            "lr_schedule": "cosine",
            "seed": seed,
            "n_train": int(mu.shape[0]),
            "feature_model": model.config.feature_model,
            "device": str(device),
        },
        **{
            name: []
            for name in SEMI_SUPERVISED_CURVES + (("val_accuracy",) if val_x is not None else ())
        },
    )

    def batches():
        order = torch.randperm(mu.shape[0], generator=generator, device=device)
        for start in range(0, mu.shape[0], batch_size):
            yield order[start : start + batch_size]

    def step(index, epoch: int, batch_index: int, steps_done: int):
        pick = torch.randint(
            len(y_labelled), (labelled_batch_size,), generator=generator, device=device
        )
        x_l = reparameterize(mu_l[pick], logvar_l[pick], generator=generator)
        x_u = reparameterize(mu[index], logvar[index], generator=generator)
        parts = semi_supervised_loss(
            model,
            x_l,
            y_labelled[pick],
            x_u if use_unlabelled else None,
            alpha,
            generator,
            labelled_weight,
        )
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        n = index.shape[0]  # the sums are per example of the epoch's unlabelled pass
        values = [parts[name].detach() * n for name in ("loss", "labelled_elbo")]
        values += [parts[name].detach() * n for name in ("unlabelled_elbo", "log_q_label")]
        return parts["loss"], torch.stack(values)

    def evaluate() -> dict[str, float]:
        predicted = model.predict(val_features)
        return {"val_accuracy": (predicted == val_y.to(device)).float().mean().item()}

    return train_loop(
        TrainingState(model, [optimizer], [scheduler], generator),
        history,
        epochs=epochs,
        batches=batches,
        n_batches=n_batches,
        n_examples=int(mu.shape[0]),
        step=step,
        train_curves=SEMI_SUPERVISED_CURVES,
        evaluate=evaluate if val_x is not None else None,
        watch=NonFiniteWatch(device, hint=f"try a smaller learning rate (lr={lr})"),
        postfix=lambda values: {"loss": f"{values['train_loss']:.2f}"},
        description="M2" if use_unlabelled else "M2 classifier, labels only",
        progress=progress,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )


#: The semi-supervised run of chapter 7: M2 on the features of the chapter-5 VAE.
M2_CONFIG = SemiSupervisedVAEConfig(
    input_dim=32, n_classes=10, hidden_dims=(500,), latent_dim=16, classifier_hidden_dims=(500,)
)
#: How it is trained: 100 labels (10 per class) of the 50,000 training images; the objective of
#: Kingma et al. divided by the number of images: the labelled ELBO weighted by their share,
#: 100 / 50,000, and the classification term by alpha = 0.1 N / N * 100 = 10.
M2_TRAINING = {
    "epochs": 100,
    "labels_per_class": 10,
    "label_seed": 0,
    "use_unlabelled": True,
    "alpha": 10.0,
    "labelled_weight": 0.002,
    "batch_size": 256,
    "labelled_batch_size": 100,
    "lr": 1e-3,
    "train_split": "train",
    "val_split": "val",
}
#: The baseline: the same classifier trained on the same 100 labels alone.
M2_BASELINE_TRAINING = {**M2_TRAINING, "use_unlabelled": False}
