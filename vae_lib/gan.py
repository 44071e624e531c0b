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
* ``vae_lib.fit(gan, images, epochs=...)`` repeats it over minibatches for a number of epochs
  (an Adam for each net, :class:`GANOptions`), in the book's one training loop.
* ``zoo.load("mnist_gan")`` loads the book's MNIST DCGAN, trained, from the model zoo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import arguments
from .training import BinarizedImages, FitOptions, Run, check_binarize, eval_mode, make_adam

GENERATOR_OUTPUTS = ("sigmoid", "linear")
GAN_ARCHITECTURES = ("mlp", "conv")

#: The curves of a GAN's :class:`vae_lib.History` from :func:`vae_lib.fit`: means over each
#: epoch's examples (each step's values weighted by its minibatch's size).
#: ``discriminator_loss`` and ``generator_loss`` are in nats per example; ``d_real`` and
#: ``d_fake`` are D's mean probabilities of "real" on real and generated examples. At the
#: game's equilibrium D outputs 1/2 everywhere: d_real = d_fake = 0.5, D's loss
#: 2 log 2 ~ 1.386 and G's log 2 ~ 0.693 nats. With validation data, ``val_<curve>`` are the
#: same quantities on it (:meth:`GAN.loss`).
GAN_CURVES = ("discriminator_loss", "generator_loss", "d_real", "d_fake")


@dataclass(frozen=True)
class GANOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`GAN` (checked when made).

    Attributes:
        batch_size: real examples per step (and as many fakes).
        lr: Adam learning rate of both networks.
        betas: Adam's ``(beta1, beta2)`` of both networks; ``(0.5, 0.999)`` is the DCGAN
            setting: a shorter memory of the gradient helps in a game whose opponent keeps
            moving.
        lr_schedule: ``None`` (constant ``lr``) or ``"cosine"`` (both rates down to 0 at the
            last step along half a cosine).
        binarize: ``None`` (train on the data as it is), ``"dynamic"`` (a fresh Bernoulli draw
            of every batch; validation data is drawn once, with the run's generator) or
            ``"threshold"``.
        generator_ema: ``None``, or a decay in (0, 1): after every step an exponential moving
            average of the generator's parameters and batch-norm statistics is updated,
            ``ema = decay * ema + (1 - decay) * current``, and at the end the generator is
            given the averages (Yazici et al., 2019). A GAN's generator keeps circling the
            game's equilibrium as the discriminator moves; the average sits nearer it.
    """

    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    binarize: str | None = None
    generator_ema: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_binarize(self.binarize)
        if self.generator_ema is not None:
            self._set(
                "generator_ema",
                arguments.real(
                    "generator_ema",
                    self.generator_ema,
                    minimum=0.0,
                    maximum=1.0,
                    strict_minimum=True,
                    strict_maximum=True,
                ),
            )


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


class GAN(BinarizedImages):
    """A GAN whose generator and discriminator are multilayer perceptrons or, with
    ``architecture="conv"``, DCGAN-style convolutional networks.

    Generator ``self.generator``: ``(B, D) -> (B, P)``, z -> generator_hidden (LeakyReLU) ->
    P = prod(input_shape) outputs, through a sigmoid if ``config.output == "sigmoid"``.
    Discriminator ``self.discriminator``: ``(B, P) -> (B, 1)``, flat x -> discriminator_hidden
    (LeakyReLU, then dropout if any) -> one logit. :meth:`generate` and :meth:`discriminate`
    wrap them with the reshaping and the input checks.

    Trained by :func:`vae_lib.fit` (settings: :class:`GANOptions`; data: a tensor
    ``(N, *input_shape)``), whose every step is one :func:`gan_training_step`.

    Example::

        gan = GAN(GANConfig(latent_dim=64)).to(default_device())
        history = fit(gan, train_x, epochs=10, generator_ema=0.999)
        images = gan.sample(16)                    # (16, 1, 28, 28) in [0, 1]
        p_real = torch.sigmoid(gan.discriminate(images))
    """

    Options = GANOptions
    curves = GAN_CURVES
    watched = "the losses (D, G)"
    #: the history's training curves are the bare names (``d_real``), as they have always been
    train_prefix = ""
    Config = GANConfig

    def __init__(self, config: GANConfig | None = None) -> None:
        super().__init__(config)
        if self.config.architecture == "conv":
            self.generator, self.discriminator = _dcgan_networks(self.config)
            return
        c = self.config
        n_out = self.input_size
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

    # -- the two networks -------------------------------------------------------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): noise ``(B, D) -> (B, *input_shape)`` samples (in [0, 1] for sigmoid output).

        Differentiable (no ``no_grad``): the generator is trained through it.
        """
        self._check_z(z)
        return self._generate(z)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z).reshape(z.shape[0], *self.input_shape)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
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
        arguments.generator("generator", generator, self.device)
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        with eval_mode(self):
            return self._generate(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits: ``(B, *input_shape) -> (B,)``; ``sigmoid`` gives P(x is real)."""
        self._check_input("x", x)
        return self._discriminate(x)

    def _discriminate(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x.flatten(start_dim=1)).squeeze(-1)

    # -- the two losses ---------------------------------------------------------------------
    def discriminator_loss(self, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of D, real labelled 1 and fake 0: ``(B,)`` in nats.

        ``-log D(x_real) - log(1 - D(x_fake)) = softplus(-l_real) + softplus(l_fake)`` with
        ``l`` the logits, for pairs of a real and a fake example (both ``(B, *input_shape)``).
        Minimising its mean maximises D's side of the GAN value function. Detach ``x_fake``
        (or make it under ``no_grad``) to keep this loss's gradients out of the generator.
        """
        self._check_input("x_real", x_real)
        self._check_input("x_fake", x_fake)
        if x_real.shape[0] != x_fake.shape[0]:
            raise ValueError(
                f"x_real and x_fake must hold the same number of examples (one pair per loss "
                f"term); got {x_real.shape[0]} and {x_fake.shape[0]}"
            )
        return F.softplus(-self._discriminate(x_real)) + F.softplus(self._discriminate(x_fake))

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

    # -- training with vae_lib.fit ----------------------------------------------------------
    def loss(self, batch: torch.Tensor, run: Run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The game's values on real examples ``batch (B, *input_shape)`` against B fresh fakes
        (z drawn with ``run.generator``): ``(D's mean loss, {curve: (B,)})`` with the parts of
        :data:`GAN_CURVES`, D's and G's losses in nats and D's probabilities of "real" on each
        real example and on each fake.

        What :func:`vae_lib.fit` reports on validation data (and :func:`vae_lib.evaluate` on
        any data). Training does not minimise it: each step is :func:`gan_training_step`,
        which measures G's loss on new fakes, after D's update.
        """
        z = torch.randn(
            batch.shape[0], self.latent_dim, device=self.device, generator=run.generator
        )
        real_logits = self._discriminate(batch)
        fake_logits = self._discriminate(self._generate(z))
        d_loss = F.softplus(-real_logits) + F.softplus(fake_logits)
        parts = {
            "discriminator_loss": d_loss,
            "generator_loss": F.softplus(-fake_logits),
            "d_real": torch.sigmoid(real_logits),
            "d_fake": torch.sigmoid(fake_logits),
        }
        return d_loss.mean(), parts

    def configure_optimizers(self, run: Run) -> list[torch.optim.Optimizer]:
        """Two Adams, D's then G's, with the run's ``lr`` and ``betas``."""
        o = run.options
        return [
            make_adam(self.discriminator.parameters(), o.lr, o.betas),
            make_adam(self.generator.parameters(), o.lr, o.betas),
        ]

    def _averaged(self) -> dict[str, torch.Tensor]:
        """The generator's floating-point state (parameters and batch-norm statistics) that
        ``generator_ema`` averages, by name; the tensors share the model's storage."""
        return {
            name: value
            for name, value in self.generator.state_dict().items()
            if value.is_floating_point()
        }

    def start_training(self, data: torch.Tensor, run: Run) -> dict[str, torch.Tensor]:
        """With ``generator_ema``, the running averages (``ema.<name>``, starting at the
        generator's weights): loop tensors, so that a checkpoint keeps and resumes them."""
        if run.options.generator_ema is None:
            return {}
        return {f"ema.{k}": v.detach().clone() for k, v in self._averaged().items()}

    def training_step(self, batch: torch.Tensor, run: Run) -> tuple[torch.Tensor, torch.Tensor]:
        """One :func:`gan_training_step` (D's Adam step, then G's), then the update of the
        generator's averages. Watched: D's and G's losses; the sums: the four values of
        :data:`GAN_CURVES` times the batch size."""
        d_optimizer, g_optimizer = run.optimizers
        losses = gan_training_step(
            self, batch, d_optimizer, g_optimizer, run.generator, as_tensor=True
        )
        decay = run.options.generator_ema
        if decay is not None:
            with torch.no_grad():
                for name, value in self._averaged().items():
                    run.tensors[f"ema.{name}"].lerp_(value, 1.0 - decay)
        return losses[:2], losses * batch.shape[0]

    def finish_training(self, run: Run) -> None:
        """With ``generator_ema``, the generator is given its averaged weights."""
        if run.options.generator_ema is None:
            return
        with torch.no_grad():
            for name, value in self._averaged().items():
                value.copy_(run.tensors[f"ema.{name}"])


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
    device instead (D's loss, G's loss, d_real, d_fake), as :meth:`GAN.training_step` uses them.
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
