"""The book's model contract and its one trainer.

Every trainable model of the book is a :class:`Trainable`: it states its training objective as
:meth:`Trainable.loss`, ``loss(batch, run) -> (scalar to minimise, {part: (B,) per-example
values in nats})``, and :func:`fit` trains any of them the same way: minibatches, one Adam step
per batch on that scalar, the learning-rate schedule, validation, the non-finite check and
resumable checkpoints (:func:`vae_lib.loop.train_loop`). A family whose step is not plain
backpropagation (the GAN's two players, the RBM's contrastive divergence) overrides
:meth:`Trainable.training_step` and nothing else of the loop; what a family's batch is (images,
images and labels, words) is its :meth:`Trainable.training_data` and :meth:`Trainable.batches`.

The family's training settings are a frozen dataclass, its ``Options`` (a subclass of
:class:`FitOptions`): the keyword arguments of :func:`fit` beyond the common ones, with the
family's defaults, checked once when :func:`fit` starts::

    history = fit(vae, train_x, epochs=10, val=val_x, beta=4.0, binarize="dynamic")
    history = fit(cvae, (images, labels), epochs=60, val=(val_images, val_labels))
    history = fit(word_vae, words, epochs=30, word_dropout=0.25)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from . import arguments
from .checks import check_unit_interval, skip_value_checks
from .data import binarize_images, minibatches
from .distributions import gaussian_kl_per_dimension
from .loop import History, NonFiniteWatch, TrainingState, train_loop

LR_SCHEDULES = (None, "cosine")
#: What :func:`fit`'s ``binarize`` takes for images (a static draw is made once, by
#: :func:`vae_lib.load_mnist`).
BINARIZATIONS = (None, "dynamic", "threshold")


def make_adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam, with the fused single-kernel update where this PyTorch build has one for the device.

    On a 2-core CPU the fused update makes a step of the reference MLP VAE about 20% faster.
    ``betas`` are Adam's decay rates (PyTorch's defaults; GANs usually take beta_1 = 0.5).
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate from its initial value down to 0 along half a cosine over ``total_steps``
    steps (call ``scheduler.step()`` after every optimizer step)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step / total_steps, 1.0)))
    )


def kl_weight(beta: float, warmup_epochs: float, steps: int, n_batches: int) -> float:
    """The KL weight of a linear warm-up (Bowman et al., 2016; Sonderby et al., 2016):
    ``beta * min(1, steps / (warmup_epochs * n_batches))``, ``beta`` when ``warmup_epochs`` is
    0. ``steps`` counts the optimiser steps the weight is for (see each family's ``loss``)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, steps / (warmup_epochs * n_batches))


def check_binarize(binarize: Any) -> None:
    """Refuse a ``binarize`` option that is not one of :data:`BINARIZATIONS`."""
    if binarize == "static" or binarize not in BINARIZATIONS:
        raise ValueError(
            f"binarize must be None, 'dynamic' or 'threshold', got {binarize!r} "
            "(a static binarization is done once by load_mnist)"
        )


def _check_kl_options(options: FitOptions, *, whole_epochs: bool = False) -> None:
    """Check (and store as Python numbers) the options of a family with a KL term: ``beta``,
    ``kl_warmup_epochs`` (a whole number with ``whole_epochs``) and ``free_bits``, each >= 0."""
    options._set("beta", arguments.real("beta", options.beta, minimum=0.0))
    warmup = options.kl_warmup_epochs
    options._set(
        "kl_warmup_epochs",
        arguments.integer("kl_warmup_epochs", warmup, minimum=0)
        if whole_epochs
        else arguments.real("kl_warmup_epochs", warmup, minimum=0.0),
    )
    options._set("free_bits", arguments.real("free_bits", options.free_bits, minimum=0.0))


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term of the free-bits loss (Kingma et al., 2016): ``sum_d max(free_bits,
    mean over the batch of KL_d)``, a scalar. Each dimension's rate below ``free_bits`` nats
    costs nothing, so the optimiser gains nothing by pushing it lower."""
    return torch.clamp(gaussian_kl_per_dimension(mu, logvar).mean(0), min=free_bits).sum()


@dataclass(frozen=True)
class FitOptions:
    """The settings of :func:`fit` that every family has; each family's ``Options`` subclass
    adds its own (and may change these defaults). Checked when made.

    Attributes:
        batch_size: examples per step.
        lr: the learning rate (of every optimiser).
        betas: Adam's ``(beta1, beta2)``, each in [0, 1).
        lr_schedule: ``None`` (constant ``lr``) or ``"cosine"`` (down to 0 at the last step).
    """

    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: str | None = None

    def __post_init__(self) -> None:
        self._set("batch_size", arguments.positive_int("batch_size", self.batch_size))
        self._set("lr", arguments.real("lr", self.lr, minimum=0.0, strict_minimum=True))
        betas = self.betas
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self._set(
            "betas",
            tuple(
                arguments.real(f"betas[{i}]", b, minimum=0.0, maximum=1.0, strict_maximum=True)
                for i, b in enumerate(betas)
            ),
        )
        arguments.one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def from_keywords(cls, family: str, keywords: Mapping[str, Any]) -> FitOptions:
        """The options from :func:`fit`'s keywords; an unknown one is a ``ValueError`` that
        lists the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(keywords) - set(valid))
        if unknown:
            raise ValueError(
                f"fit got {unknown} for the model {family}, which takes epochs, val, seed, "
                f"progress, checkpoint, checkpoint_seconds and its options {valid}"
            )
        return cls(**keywords)


@dataclass
class Run:
    """What a model's training hooks see of the run :func:`fit` is doing.

    Attributes:
        options: the family's options (a frozen :class:`FitOptions` subclass).
        generator: the run's random generator, on the model's device (data order, noise).
        epochs: the run's length.
        n_batches: minibatches per epoch (set once the data is known).
        step: optimiser steps done before the current one (0 for the first step).
        optimizers: from :meth:`Trainable.configure_optimizers`.
        tensors: the loop's own tensors that a checkpoint keeps (an RBM's persistent chains,
            a GAN's weight averages), by name; a step may replace them.
    """

    options: Any
    generator: torch.Generator
    epochs: int = 1
    n_batches: int = 1
    step: int = 0
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def _first_tensor(data: Any) -> torch.Tensor:
    return data[0] if isinstance(data, tuple | list) else data


class Trainable(nn.Module):
    """The model contract: what :func:`fit` and :func:`evaluate` need of a model.

    A family sets :attr:`Options` and :attr:`curves` and implements :meth:`loss`; every other
    hook has a default that fits a model of images trained with one Adam. What every model
    shares beyond training is here too: its ``config`` (``Config()`` when none is given), the
    ``device``, ``dtype``, ``input_shape`` and ``latent_dim`` read from it, and the shape
    checks of its inputs (:meth:`_check_input`, :meth:`_check_z`).

    Attributes:
        Options: the family's frozen :class:`FitOptions` subclass (its settings and defaults).
        Config: the family's config class (a frozen dataclass), or ``None``.
        curves: the names of the per-example parts :meth:`loss` returns, in the order of the
            history's ``train_*`` and ``val_*`` curves.
        watched: what the non-finite check names when the loss goes bad.
    """

    Options: ClassVar[type[FitOptions]] = FitOptions
    Config: ClassVar[type | None] = None
    curves: ClassVar[tuple[str, ...]] = ()
    watched: ClassVar[str] = "the loss"
    #: The prefix of the history's training curves (``train_elbo``); the GAN's are its bare
    #: curve names (``d_real``), as its histories have always had them.
    train_prefix: ClassVar[str] = "train_"

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        if config is None and self.Config is not None:
            config = self.Config()
        self.config = config

    # -- shared by every family -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model's parameters are."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type the model computes in (that of its parameters)."""
        return next(self.parameters()).dtype

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example (``config.input_shape``), e.g. ``(1, 28, 28)``."""
        return tuple(self.config.input_shape)

    @property
    def input_size(self) -> int:
        """P, the number of values in one example (the product of ``input_shape``)."""
        return math.prod(self.input_shape)

    @property
    def latent_dim(self) -> int:
        """The dimension of the model's code z (``config.latent_dim``)."""
        return int(self.config.latent_dim)

    def _check_input(
        self,
        name: str,
        x: Any,
        event_shape: tuple[int, ...] | None = None,
        *,
        sizes: str | None = None,
        leading: str = "one",
        on_device: bool = False,
    ) -> torch.Tensor:
        """``x`` if it is a tensor ``(B, *event_shape)`` (default: ``input_shape``) of the
        model's dtype (and on its device, with ``on_device``); the messages name ``name``
        (:func:`vae_lib.arguments.shaped_tensor`)."""
        return arguments.shaped_tensor(
            name,
            x,
            self.input_shape if event_shape is None else event_shape,
            sizes=sizes,
            leading=leading,
            dtype=self.dtype,
            device=self.device if on_device else None,
        )

    def _check_z(self, z: Any, *, leading: str = "one") -> torch.Tensor:
        """``z`` if it is a tensor of codes ``(B, latent_dim)`` of the model's dtype (with
        ``leading="any"``: ``(..., latent_dim)``)."""
        d = self.latent_dim
        return self._check_input("z", z, (d,), sizes=f"latent_dim={d}", leading=leading)

    # -- the objective -------------------------------------------------------------------------
    def loss(self, batch: Any, run: Run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(scalar to minimise, {curve: (B,) per-example values})`` on one minibatch.

        The parts are the true quantities in nats (for a VAE the ELBO at beta = 1, its
        reconstruction and KL); the scalar carries what training adds (beta, warm-up, free
        bits). ``run.step`` is the number of steps done so far."""
        raise NotImplementedError(f"{type(self).__name__} does not define loss()")

    # -- hooks with defaults -----------------------------------------------------------------
    def training_data(self, data: Any, run: Run, *, name: str) -> Any:
        """``data`` checked (shape, dtype, values) and moved to the model's device, ready for
        :meth:`batches`; ``name`` is ``"data"`` or ``"val"``. Values are checked here once, so
        the steps never check them again. Default: a tensor ``(N, *input_shape)``."""
        x = arguments.data_set(name, data, input_shape=self.input_shape, dtype=self.dtype)
        return x.to(self.device)

    def epoch_size(self, data: Any, run: Run) -> tuple[int, int]:
        """``(minibatches, examples)`` of one epoch over the prepared ``data``."""
        n = int(_first_tensor(data).shape[0])
        return math.ceil(n / run.options.batch_size), n

    def batches(self, data: Any, run: Run) -> Iterator[Any]:
        """The minibatches of one epoch (default: shuffled rows of a tensor or of a tuple of
        tensors, drawn with the run's generator)."""
        return minibatches(data, run.options.batch_size, shuffle=True, generator=run.generator)

    def configure_optimizers(self, run: Run) -> list[torch.optim.Optimizer]:
        """The optimisers of a run (default: one Adam over every parameter)."""
        return [make_adam(self.parameters(), run.options.lr, run.options.betas)]

    def start_training(self, data: Any, run: Run) -> dict[str, torch.Tensor]:
        """Loop tensors that a checkpoint keeps, made before the first step (default none)."""
        return {}

    def training_step(self, batch: Any, run: Run) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step: ``(watched values, (len(curves),) sums of the parts)``.
        Default: backpropagation of :meth:`loss` and one step of the one optimiser."""
        loss, parts = self.loss(batch, run)
        (optimizer,) = run.optimizers
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            return loss.detach(), torch.stack([parts[c].sum() for c in self.curves])

    def finish_training(self, run: Run) -> None:
        """After the last epoch (default nothing; the GAN copies in its averaged weights)."""

    @torch.no_grad()
    def evaluation(self, data: Any, run: Run, batch_size: int = 1000) -> dict[str, float]:
        """Mean parts of :meth:`loss` over prepared ``data`` (in chunks of ``batch_size``; the
        caller puts the model in eval mode). A family may report other validation values."""
        sums = dict.fromkeys(self.curves, 0.0)
        n = 0
        for chunk in _chunks(data, batch_size):
            _, parts = self.loss(chunk, run)
            for c in self.curves:
                sums[c] += parts[c].sum().item()
            n += int(_first_tensor(chunk).shape[0])
        return {c: v / n for c, v in sums.items()}


class BinarizedImages(Trainable):
    """A model trained on images ``(N, *input_shape)`` with the option ``binarize`` (one of
    :data:`BINARIZATIONS`): every minibatch is binarized as it says (``"dynamic"``: a fresh
    Bernoulli draw), and validation data once, when it is prepared (a dynamic binarization
    drawn with the run's generator). A family says how the values are checked
    (:meth:`_check_values`)."""

    def _check_values(self, name: str, x: torch.Tensor, binarize: str | None) -> None:
        """Check the values of prepared data ``x``, once (default: in [0, 1] if binarized)."""
        if binarize is not None:
            check_unit_interval(name, x, f"for binarize={binarize!r}")

    def training_data(self, data: Any, run: Run, *, name: str) -> torch.Tensor:
        x = super().training_data(data, run, name=name)
        binarize = run.options.binarize
        self._check_values(name, x, binarize)
        if name == "val":  # drawn once, from the run's generator
            x = binarize_images(x, "static" if binarize == "dynamic" else binarize, run.generator)
        return x

    def batches(self, data: torch.Tensor, run: Run) -> Iterator[torch.Tensor]:
        """Shuffled minibatches ``(b, *input_shape)``, binarized as ``binarize`` says (order
        and draws from the run's generator)."""
        o = run.options
        return minibatches(
            data, o.batch_size, shuffle=True, binarize=o.binarize, generator=run.generator
        )


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in evaluation mode inside the block (dropout off, batch norm on its running
    statistics); its mode is given back after, whatever happens."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _chunks(data: Any, size: int) -> Iterable[Any]:
    if isinstance(data, tuple):
        return zip(*(t.split(size) for t in data), strict=True)
    return data.split(size)


def _check_model(model: object) -> Trainable:
    if not isinstance(model, Trainable) or next(model.parameters(), None) is None:
        raise ValueError(
            "model must be one of vae_lib's models (a Trainable with parameters: a VAE, "
            f"autoencoder, GAN, RBM, classifier, conditional or sequence VAE), got "
            f"{type(model).__name__}"
        )
    return model


def fit(
    model: Trainable,
    data: Any,
    *,
    epochs: int,
    val: Any = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
    **options: Any,
) -> History:
    """Train any of the book's models on ``data`` with its family's objective.

    Each epoch goes once through shuffled minibatches of ``data``; each step is the model's
    :meth:`Trainable.training_step` (for most families one Adam step on
    :meth:`Trainable.loss`); after each epoch the validation data, if any, is evaluated. Works
    on whatever device the model is on; the data is moved there once.

    Args:
        model: a :class:`Trainable` (every model class of the library).
        data: what the family trains on: a tensor ``(N, *input_shape)`` of images for VAEs,
            autoencoders, the GAN, the RBM and the quadrant regressor; ``(images, labels)``
            for the classifier, conditional VAEs and M2; a list of words for a sequence VAE.
        epochs: passes over the data (>= 1).
        val: optional validation data of the same kind, evaluated after every epoch.
        seed: seeds the data order, binarization draws and the model's noise. The same seed
            gives the same bits on the same machine with the same number of CPU threads.
        progress: show a ``tqdm`` progress bar.
        checkpoint: optional file for a resumable run. After an epoch, once at least
            ``checkpoint_seconds`` have passed since the last save (and after the last epoch),
            the model, optimisers, schedules, random state and history are written there
            (atomically). If the file exists when ``fit`` starts, training continues after its
            last epoch, with the same result on the same machine as an uninterrupted run; a
            file from a run with other settings is refused.
        checkpoint_seconds: least wall time between two checkpoint saves.
        **options: the family's settings (``type(model).Options``): for every family
            ``batch_size``, ``lr``, ``betas``, ``lr_schedule``; for a VAE also ``beta``,
            ``binarize``, ``kl_warmup_epochs``, ``free_bits``; and so on.

    Returns:
        :class:`vae_lib.History` of the run: ``train_<part>`` for each of the model's
        ``curves`` (means over the epoch's examples) and ``val_<...>`` after each epoch.

    Raises:
        NonFiniteLossError: if the loss becomes NaN or infinite (names the epoch and batch of
            the first bad step; checked every 64 steps and at each epoch's end).
        ValueError: on bad arguments or data (checked once, before the first step).
    """
    model = _check_model(model)
    epochs = arguments.positive_int("epochs", epochs)
    seed = arguments.seed("seed", seed)
    progress = arguments.boolean("progress", progress)
    checkpoint_seconds = arguments.real("checkpoint_seconds", checkpoint_seconds, minimum=0.0)
    opts = type(model).Options.from_keywords(type(model).__name__, options)
    device = model.device
    run = Run(options=opts, generator=torch.Generator(device=device).manual_seed(seed))
    run.epochs = epochs
    train = model.training_data(data, run, name="data")
    if val is not None:
        val = model.training_data(val, run, name="val")
    run.n_batches, n_examples = model.epoch_size(train, run)
    run.optimizers = model.configure_optimizers(run)
    schedulers = []
    if opts.lr_schedule == "cosine":
        schedulers = [cosine_schedule(o, epochs * run.n_batches) for o in run.optimizers]
    state = TrainingState(
        model, run.optimizers, schedulers, run.generator, model.start_training(train, run)
    )
    run.tensors = state.tensors
    options_ = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(opts).items()
    }
    settings = {"epochs": epochs, **options_, "seed": seed}
    settings.update(n_train=n_examples, device=str(device))
    train_curves = [f"{model.train_prefix}{c}" for c in model.curves]
    # every curve of the run from the start; without validation data the val_ ones stay
    # empty, as the old trainers had them, so that history.val_elbo and plot_history work;
    # with it, the model's evaluation names them (a quadrant CVAE: val_elbo_1, ...)
    val_curves = [f"val_{c}" for c in model.curves] if val is None else []
    history = History(settings=settings, **{name: [] for name in train_curves + val_curves})

    def step(batch: Any, epoch: int, batch_index: int, steps_done: int):
        run.step = steps_done
        return model.training_step(batch, run)

    def evaluate_val() -> dict[str, float]:
        model.eval()
        with skip_value_checks():  # the validation data was checked once, above
            values = model.evaluation(val, run)
        return {f"val_{name}": value for name, value in values.items()}

    def postfix(values: Mapping[str, float]) -> dict[str, str]:
        first = model.curves[0]
        text = {first: f"{values[model.train_prefix + first]:.3f}"}
        if f"val_{first}" in values:
            text[f"val {first}"] = f"{values[f'val_{first}']:.3f}"
        return text

    history = train_loop(
        state,
        history,
        epochs=epochs,
        batches=lambda: model.batches(train, run),
        n_batches=run.n_batches,
        n_examples=n_examples,
        step=step,
        train_curves=train_curves,
        evaluate=evaluate_val if val is not None else None,
        watch=NonFiniteWatch(
            device, what=model.watched, hint=f"try a smaller learning rate (lr={opts.lr})"
        ),
        postfix=postfix,
        description=f"training {type(model).__name__}",
        progress=progress,
        values_checked=True,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )
    model.finish_training(run)
    return history


def evaluate(
    model: Trainable,
    data: Any,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
    **options: Any,
) -> dict[str, float]:
    """The mean per-example parts of the model's loss over ``data`` (for a VAE the one-sample
    ELBO, reconstruction and KL in nats per example), in eval mode and in chunks of
    ``batch_size``; the model's mode is restored. ``data`` is what :func:`fit` takes;
    ``generator`` (on the model's device) draws the noise (without one, a generator seeded
    from PyTorch's global one, so that :func:`vae_lib.set_seed` fixes the result);
    ``options`` as in :func:`fit`."""
    model = _check_model(model)
    batch_size = arguments.positive_int("batch_size", batch_size)
    arguments.generator("generator", generator, model.device)
    opts = type(model).Options.from_keywords(type(model).__name__, options)
    if generator is None:  # seeded from the global generator: set_seed makes it reproducible
        seed = int(torch.randint(2**63 - 1, (1,), dtype=torch.int64).item())
        generator = torch.Generator(device=model.device).manual_seed(seed)
    run = Run(options=opts, generator=generator)
    data = model.training_data(data, run, name="data")
    with eval_mode(model):
        return model.evaluation(data, run, batch_size)
