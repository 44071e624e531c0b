"""A generative adversarial network (Goodfellow et al., 2014), the VAE's implicit-density rival.

A generator G maps noise z ~ N(0, I) to data space; a discriminator D maps an observation to
a logit, ``sigmoid(logit)`` being its probability that the observation is real. The two play
a game: D is trained to tell real data (label 1) from G's samples (label 0) by binary
cross-entropy, G to make D call its samples real. Both networks are MLPs with LeakyReLU
activations or, with ``architecture="conv"``, the convolutional networks of DCGAN (Radford et
al., 2016); the generator's output is a sigmoid (images in [0, 1]) or linear (real-valued
toy data), and G is trained with the *non-saturating* loss -log D(G(z)) (see
:meth:`GAN.generator_loss`).

Unlike a VAE, a GAN has no encoder and defines no likelihood: it can only be sampled from.
All losses are per example and in nats (natural logarithms), like the rest of ``vae_lib``.

* :func:`gan_training_step` is one alternating update of D and then G.
* :func:`fit_gan` repeats it over minibatches for a number of epochs (Adam for both nets), in
  the book's one training loop (:func:`vae_lib.train_loop`).
* ``zoo.load("mnist_gan")`` loads the book's MNIST DCGAN, trained, from the model zoo.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import arguments
from .checks import check_unit_interval
from .data import minibatches
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .training import LR_SCHEDULES, cosine_schedule, make_adam

GENERATOR_OUTPUTS = ("sigmoid", "linear")
GAN_ARCHITECTURES = ("mlp", "conv")
GAN_BINARIZATIONS = (None, "dynamic", "threshold")


@dataclass(frozen=True)
class GANConfig:
    """Settings of a :class:`GAN`: MLP or convolutional (DCGAN) generator and discriminator.

    Attributes:
        input_shape: shape of one observation, ``(1, 28, 28)`` for MNIST or ``(1,)`` for
            numbers on a line.
        latent_dim: D, the dimension of the noise z ~ N(0, I) fed to the generator.
        generator_hidden: widths of the generator's hidden layers, z -> ... -> P outputs
            (``()``: an affine generator).
        discriminator_hidden: widths of the discriminator's hidden layers, x -> ... -> 1 logit
            (``()``: logistic regression).
        negative_slope: slope of LeakyReLU for negative inputs, in both networks (0 gives ReLU).
        dropout: dropout probability after every hidden layer of the discriminator (0: none).
        batch_norm: batch normalisation after every hidden linear layer of the generator (as in
            DCGAN, Radford et al., 2016). Without it an MLP generator on MNIST tends to collapse
            onto a single image within the first epoch; in eval mode the running statistics are
            used, so :meth:`GAN.sample` does not depend on the batch.
        output: the generator's output activation, ``"sigmoid"`` (values in [0, 1], for images)
            or ``"linear"`` (any real value, for real-valued data).
        architecture: ``"mlp"`` (``generator_hidden`` and ``discriminator_hidden`` set the
            widths) or ``"conv"``, the DCGAN layout of Radford et al. (2016) for ``(C, H, W)``
            images with H and W divisible by 4: the generator maps z linearly to
            ``(channels[1], H/4, W/4)`` and up through two 4x4 stride-2 transposed
            convolutions, with batch normalisation and ReLU between; the discriminator mirrors
            it with strided convolutions and LeakyReLU, batch normalisation after the second,
            then one linear logit. ``generator_hidden``, ``discriminator_hidden`` and
            ``dropout`` are then unused.
        channels: ``(c1, c2)``, the two feature-map widths of the ``"conv"`` architecture.
        spectral_norm: spectral normalisation of every layer of the discriminator (Miyato et
            al., 2018): each weight matrix is divided by an estimate of its largest singular
            value (one power iteration per training step), which bounds how sharply D can
            separate real from fake and keeps it from overpowering the generator. The
            discriminator then has no batch normalisation (the generator keeps its own).
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    latent_dim: int = 64
    generator_hidden: tuple[int, ...] = (256, 512)
    discriminator_hidden: tuple[int, ...] = (256,)
    negative_slope: float = 0.2
    dropout: float = 0.3
    batch_norm: bool = True
    output: str = "sigmoid"
    architecture: str = "mlp"
    channels: tuple[int, ...] = (64, 128)
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("input_shape", "generator_hidden", "discriminator_hidden", "channels"):
            allow_empty = name in ("generator_hidden", "discriminator_hidden")
            value = arguments.positive_ints(name, getattr(self, name), allow_empty=allow_empty)
            object.__setattr__(self, name, value)
        object.__setattr__(
            self, "latent_dim", arguments.positive_int("latent_dim", self.latent_dim)
        )
        for name in ("negative_slope", "dropout"):
            object.__setattr__(self, name, arguments.probability(name, getattr(self, name)))
        for name in ("batch_norm", "spectral_norm"):
            arguments.boolean(name, getattr(self, name))
        arguments.one_of("output", self.output, GENERATOR_OUTPUTS)
        arguments.one_of("architecture", self.architecture, GAN_ARCHITECTURES)
        if self.architecture == "conv":
            shape = self.input_shape
            if len(shape) != 3 or shape[1] % 4 or shape[2] % 4 or len(self.channels) != 2:
                raise ValueError(
                    f"the conv architecture needs input_shape (C, H, W) with H and W divisible "
                    f"by 4 and two channels; got {shape} and {self.channels}"
                )


def _dcgan_networks(c: GANConfig) -> tuple[nn.Sequential, nn.Sequential]:
    """The generator ``(B, D) -> (B, P)`` and discriminator ``(B, P) -> (B, 1)`` of the
    ``"conv"`` architecture (both on flat tensors, as in the MLP case)."""
    n_channels, height, width = c.input_shape
    c1, c2 = c.channels
    small = (c2, height // 4, width // 4)
    slope = c.negative_slope
    generator: list[nn.Module] = [nn.Linear(c.latent_dim, math.prod(small))]
    generator += [nn.BatchNorm1d(math.prod(small))] if c.batch_norm else []
    generator += [nn.ReLU(), nn.Unflatten(1, small), nn.ConvTranspose2d(c2, c1, 4, 2, 1)]
    generator += [nn.BatchNorm2d(c1)] if c.batch_norm else []
    generator += [nn.ReLU(), nn.ConvTranspose2d(c1, n_channels, 4, 2, 1), nn.Flatten()]
    generator += [nn.Sigmoid()] if c.output == "sigmoid" else []
    norm = _spectral_norm if c.spectral_norm else (lambda layer: layer)
    discriminator: list[nn.Module] = [
        nn.Unflatten(1, tuple(c.input_shape)),
        norm(nn.Conv2d(n_channels, c1, 4, 2, 1)),
        nn.LeakyReLU(slope),
        norm(nn.Conv2d(c1, c2, 4, 2, 1)),
    ]
    discriminator += [nn.BatchNorm2d(c2)] if c.batch_norm and not c.spectral_norm else []
    discriminator += [nn.LeakyReLU(slope), nn.Flatten(), norm(nn.Linear(math.prod(small), 1))]
    return nn.Sequential(*generator), nn.Sequential(*discriminator)


def _spectral_norm(layer: nn.Module) -> nn.Module:
    """``layer`` with its weight spectrally normalised (torch's parametrization)."""
    return nn.utils.parametrizations.spectral_norm(layer)


class GAN(nn.Module):
    """A GAN whose generator and discriminator are multilayer perceptrons or, with
    ``architecture="conv"``, DCGAN-style convolutional networks.

    Generator ``self.generator``: ``(B, D) -> (B, P)``, z -> generator_hidden (LeakyReLU) ->
    P = prod(input_shape) outputs, through a sigmoid if ``config.output == "sigmoid"``.
    Discriminator ``self.discriminator``: ``(B, P) -> (B, 1)``, flat x -> discriminator_hidden
    (LeakyReLU, then dropout if any) -> one logit. :meth:`generate` and :meth:`discriminate`
    wrap them with the reshaping and the input checks.

    Example::

        gan = GAN(GANConfig(latent_dim=64)).to(default_device())
        history = fit_gan(gan, train_x, epochs=10)
        images = gan.sample(16)                    # (16, 1, 28, 28) in [0, 1]
        p_real = torch.sigmoid(gan.discriminate(images))
    """

    def __init__(self, config: GANConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else GANConfig()
        if self.config.architecture == "conv":
            self.generator, self.discriminator = _dcgan_networks(self.config)
            return
        c = self.config
        n_out = math.prod(c.input_shape)
        layers: list[nn.Module] = []
        n_in = c.latent_dim
        for width in c.generator_hidden:
            layers.append(nn.Linear(n_in, width))
            if c.batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.LeakyReLU(c.negative_slope))
            n_in = width
        layers.append(nn.Linear(n_in, n_out))
        if c.output == "sigmoid":
            layers.append(nn.Sigmoid())
        self.generator = nn.Sequential(*layers)
        layers = []
        n_in = n_out
        norm = _spectral_norm if c.spectral_norm else (lambda layer: layer)
        for width in c.discriminator_hidden:
            layers += [norm(nn.Linear(n_in, width)), nn.LeakyReLU(c.negative_slope)]
            if c.dropout > 0:
                layers.append(nn.Dropout(c.dropout))
            n_in = width
        layers.append(norm(nn.Linear(n_in, 1)))
        self.discriminator = nn.Sequential(*layers)

    # -- shapes -----------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_x(self, x: torch.Tensor, name: str = "x") -> None:
        expected = f"(B, {', '.join(map(str, self.input_shape))})"
        dtype = next(self.parameters()).dtype
        arguments.float_tensor(name, x, shape=expected, dtype=dtype)
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {expected}")

    def _check_z(self, z: torch.Tensor) -> None:
        expected = f"(B, latent_dim={self.latent_dim})"
        arguments.float_tensor("z", z, shape=expected, dtype=next(self.parameters()).dtype)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected {expected}")

    # -- the two networks -------------------------------------------------------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): noise ``(B, D) -> (B, *input_shape)`` samples (in [0, 1] for sigmoid output).

        Differentiable (no ``no_grad``): the generator is trained through it.
        """
        self._check_z(z)
        return self.generator(z).reshape(z.shape[0], *self.input_shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` samples: z ~ N(0, I) on the model's device, then G(z).

        Args:
            n: number of samples (>= 1).
            generator: optional ``torch.Generator`` on the model's device, for the noise.

        Returns:
            ``(n, *input_shape)`` tensor on the model's device, without gradients. Sampling
            runs in eval mode, so batch normalisation uses its running statistics and a sample
            does not depend on the others drawn with it; the model's mode is given back.
        """
        n = arguments.positive_int("n", n)
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        was_training = self.training
        self.eval()
        try:
            return self.generate(z)
        finally:
            self.train(was_training)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits: ``(B, *input_shape) -> (B,)``; ``sigmoid`` gives P(x is real)."""
        self._check_x(x)
        return self.discriminator(x.flatten(start_dim=1)).squeeze(-1)

    # -- the two losses ---------------------------------------------------------------------
    def discriminator_loss(self, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of D, real labelled 1 and fake 0: ``(B,)`` in nats.

        ``-log D(x_real) - log(1 - D(x_fake)) = softplus(-l_real) + softplus(l_fake)`` with
        ``l`` the logits, for pairs of a real and a fake example (both ``(B, *input_shape)``).
        Minimising its mean maximises D's side of the GAN value function. Detach ``x_fake``
        (or make it under ``no_grad``) to keep this loss's gradients out of the generator.
        """
        self._check_x(x_real, "x_real")
        self._check_x(x_fake, "x_fake")
        if x_real.shape[0] != x_fake.shape[0]:
            raise ValueError(
                f"x_real and x_fake must hold the same number of examples (one pair per loss "
                f"term); got {x_real.shape[0]} and {x_fake.shape[0]}"
            )
        return F.softplus(-self.discriminate(x_real)) + F.softplus(self.discriminate(x_fake))

    def generator_loss(self, x_fake: torch.Tensor, saturating: bool = False) -> torch.Tensor:
        """G's loss on its samples ``x_fake = G(z)`` ``(B, *input_shape)``: ``(B,)``, in nats.

        * ``saturating=False`` (default): the non-saturating loss ``-log D(G(z))
          = softplus(-l)``, with ``l`` the discriminator's logit.
        * ``saturating=True``: the minimax game's own term ``log(1 - D(G(z))) = -softplus(l)``
          (to be minimised too; it is always <= 0).

        Both push D(G(z)) up and have the same fixed point, but early in training, when D
        confidently rejects the fakes (D(G(z)) ~ 0, l very negative), the minimax term is flat:
        its derivative with respect to ``l`` is ``-sigmoid(l) = -D(G(z))``, so the generator
        gets almost no gradient exactly when it is worst. The non-saturating loss has
        derivative ``-(1 - D(G(z)))``, close to -1 there (Goodfellow et al., 2014, section 3).
        """
        logits = self.discriminate(x_fake)
        return -F.softplus(logits) if saturating else F.softplus(-logits)


@dataclass
class GANLosses:
    """What one :func:`gan_training_step` measured, averaged over its minibatch.

    Attributes:
        discriminator_loss: D's binary cross-entropy (real + fake terms), nats per pair.
        generator_loss: G's non-saturating loss -log D(G(z)), nats per example, measured with
            the discriminator as updated in the same step.
        d_real: mean D probability that the real examples are real (before D's update).
        d_fake: mean D probability that the fakes are real (the same fakes, before D's update).
    """

    discriminator_loss: float
    generator_loss: float
    d_real: float
    d_fake: float


def gan_training_step(
    gan: GAN,
    x_real: torch.Tensor,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None = None,
    *,
    as_tensor: bool = False,
) -> GANLosses | torch.Tensor:
    """One alternating GAN update on a minibatch ``x_real (B, *input_shape)``.

    First one discriminator step on the real examples against B fresh fakes (detached, so the
    generator is not touched), then one generator step on B new fakes. ``generator`` (on the
    model's device) seeds the noise z. The discriminator's gradients from the generator step
    are computed but never applied: ``d_optimizer`` clears them before its next step.

    Returns the step's :class:`GANLosses` as Python floats, which waits for the device to
    finish the step; with ``as_tensor=True``, the same four numbers as a ``(4,)`` tensor on the
    device instead (D's loss, G's loss, d_real, d_fake), as :func:`fit_gan` uses them.
    """
    n, d = x_real.shape[0], gan.latent_dim
    # 1. Discriminator: real (label 1) against fakes (label 0); detach() stops at the generator.
    x_fake = gan.generate(torch.randn(n, d, device=gan.device, generator=generator)).detach()
    real_logits, fake_logits = gan.discriminate(x_real), gan.discriminate(x_fake)
    d_loss = (F.softplus(-real_logits) + F.softplus(fake_logits)).mean()
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()
    # 2. Generator: new fakes, non-saturating loss -log D(G(z)), only G's weights are stepped.
    x_fake = gan.generate(torch.randn(n, d, device=gan.device, generator=generator))
    g_loss = F.softplus(-gan.discriminate(x_fake)).mean()
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    losses = torch.stack(  # D's loss, G's loss, then D's mean P(real) on real and on fakes
        [d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
    ).detach()
    return losses if as_tensor else GANLosses(*losses.tolist())


#: The curves of :func:`fit_gan`'s :class:`vae_lib.History`: means over each epoch's
#: minibatches. ``discriminator_loss`` and ``generator_loss`` are in nats per example;
#: ``d_real`` and ``d_fake`` are D's mean probabilities of "real" on real and generated
#: examples. At the game's equilibrium D outputs 1/2 everywhere: d_real = d_fake = 0.5, D's loss
#: 2 log 2 ~ 1.386 and G's log 2 ~ 0.693 nats.
GAN_CURVES = ("discriminator_loss", "generator_loss", "d_real", "d_fake")


def fit_gan(
    gan: GAN,
    train_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    lr_schedule: str | None = None,
    binarize: str | None = None,
    progress: bool = True,
    seed: int = 0,
    generator_ema: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train ``gan`` by :func:`gan_training_step` over shuffled minibatches of ``train_x``.

    Both networks get their own Adam (``betas=(0.5, 0.999)``, the DCGAN setting: a shorter
    memory of the gradient helps in a game whose opponent keeps moving). Works on whatever
    device the model is on; the data is moved there once.

    Args:
        gan: a :class:`GAN`.
        train_x: ``(N, *input_shape)`` training data in memory (in [0, 1] for a sigmoid
            generator).
        epochs: passes over the data (>= 1).
        batch_size: real examples per step (and as many fakes).
        lr: Adam learning rate of both networks.
        betas: Adam's ``(beta1, beta2)``, each in [0, 1).
        lr_schedule: ``None`` (constant ``lr``) or ``"cosine"`` (both rates down to 0 at the
            last step along half a cosine).
        binarize: ``None`` (train on ``train_x`` as it is), ``"dynamic"`` (a fresh Bernoulli
            draw of every batch) or ``"threshold"``.
        progress: show a ``tqdm`` progress bar (with the mean losses of each finished epoch).
        seed: seeds the data order, the binarization draws and the noise z.
        generator_ema: ``None``, or a decay in (0, 1): after every step an exponential moving
            average of the generator's parameters and batch-norm statistics is updated,
            ``ema = decay * ema + (1 - decay) * current``, and at the end the generator is
            given the averages (Yazici et al., 2019). A GAN's generator keeps circling the
            game's equilibrium as the discriminator moves; the average sits nearer it.
        checkpoint, checkpoint_seconds: a resumable run, as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` of the run, with the curves :data:`GAN_CURVES`; the model is
        left in eval mode.

    Raises:
        NonFiniteLossError: if a loss becomes NaN or infinite (names the epoch and batch of
            the first bad step; checked every 64 steps and at each epoch's end, without a host
            synchronisation per step).
    """
    if not isinstance(gan, GAN):
        raise ValueError(f"gan must be a GAN, got {type(gan).__name__}")
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    gan._check_x(train_x, "train_x")
    if train_x.shape[0] < 1:
        raise ValueError("train_x must hold at least one example")
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    if (
        not isinstance(betas, tuple | list)
        or len(betas) != 2
        or not all(0.0 <= b < 1.0 for b in betas)
    ):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    arguments.one_of("lr_schedule", lr_schedule, LR_SCHEDULES)
    arguments.one_of("binarize", binarize, GAN_BINARIZATIONS)
    seed = arguments.seed("seed", seed)
    if generator_ema is not None:
        generator_ema = arguments.real(
            "generator_ema",
            generator_ema,
            minimum=0.0,
            maximum=1.0,
            strict_minimum=True,
            strict_maximum=True,
        )

    device = gan.device
    train_x = train_x.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    betas = (float(betas[0]), float(betas[1]))
    d_optimizer = make_adam(gan.discriminator.parameters(), lr, betas)
    g_optimizer = make_adam(gan.generator.parameters(), lr, betas)
    n = train_x.shape[0]
    n_batches = math.ceil(n / batch_size)
    total_steps = epochs * n_batches
    schedulers = []
    if lr_schedule == "cosine":
        schedulers = [cosine_schedule(o, total_steps) for o in (d_optimizer, g_optimizer)]
    history = History(
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "betas": list(betas),
            "lr_schedule": lr_schedule,
            "binarize": binarize,
            "seed": seed,
            "generator_ema": generator_ema,
            "n_train": int(n),
            "device": str(device),
        },
        **{name: [] for name in GAN_CURVES},
    )
    # the running averages: the loop's tensors, so that a checkpoint keeps and resumes them
    averaged = {
        name: value
        for name, value in gan.generator.state_dict().items()
        if value.is_floating_point()
    }
    state = TrainingState(gan, [d_optimizer, g_optimizer], schedulers, generator)
    if generator_ema is not None:
        state.tensors.update({f"ema.{k}": v.detach().clone() for k, v in averaged.items()})
    # checked once here, so the steps' binarizations can skip their per-batch checks (syncs)
    checked = binarize is not None
    if checked:
        check_unit_interval("train_x", train_x, f"for binarize={binarize!r}")

    def step(xb: torch.Tensor, epoch: int, batch_index: int, steps_done: int):
        losses = gan_training_step(gan, xb, d_optimizer, g_optimizer, generator, as_tensor=True)
        if generator_ema is not None:
            with torch.no_grad():
                for name, value in averaged.items():
                    state.tensors[f"ema.{name}"].lerp_(value, 1.0 - generator_ema)
        return losses[:2], losses * xb.shape[0]

    history = train_loop(
        state,
        history,
        epochs=epochs,
        batches=lambda: minibatches(
            train_x, batch_size, shuffle=True, binarize=binarize, generator=generator
        ),
        n_batches=n_batches,
        n_examples=int(n),
        step=step,
        train_curves=GAN_CURVES,
        watch=NonFiniteWatch(
            device,
            what="the losses (D, G)",
            n_values=2,
            hint=f"try a smaller learning rate (lr={lr}) or check the data",
        ),
        postfix=lambda v: {
            "D": f"{v['discriminator_loss']:.3f}",
            "G": f"{v['generator_loss']:.3f}",
        },
        description="training GAN",
        progress=progress,
        values_checked=checked,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )
    if generator_ema is not None:
        with torch.no_grad():
            for name, value in averaged.items():
                value.copy_(state.tensors[f"ema.{name}"])
    return history


#: Architecture of the book's MNIST GAN: a DCGAN (Radford et al., 2016). The generator maps a
#: 64-dimensional z to 128 feature maps of 7x7, then up through transposed convolutions to 64
#: maps of 14x14 and one 28x28 image, with batch normalisation between; the discriminator
#: mirrors it with strided convolutions and LeakyReLU (slope 0.2), each layer spectrally
#: normalised (Miyato et al., 2018). With batch normalisation in the discriminator instead, it
#: won the game (its loss fell to 0.18 nats, D(G(z)) to 0.05) and the generator's digits were
#: unbalanced (a fifth of them 0s, another fifth 9s).
MNIST_GAN_CONFIG = GANConfig(
    input_shape=(1, 28, 28),
    latent_dim=64,
    negative_slope=0.2,
    batch_norm=True,
    output="sigmoid",
    architecture="conv",
    channels=(64, 128),
    spectral_norm=True,
)
#: How it is trained (the recipe of its zoo entry): the DCGAN paper's Adam settings, the rate
#: decaying to zero along a cosine, and the generator's weights averaged over its last few
#: thousand updates (an exponential moving average with decay 0.999).
MNIST_GAN_TRAINING = {
    "epochs": 20,
    "batch_size": 64,
    "lr": 2e-4,
    "betas": (0.5, 0.999),
    "lr_schedule": "cosine",
    "generator_ema": 0.999,
    "train_split": "train",
}
