"""Structured output prediction on MNIST: given one, two or three quadrants of a digit, predict
the rest (Sohn, Lee & Yan, 2015; the task of Pyro's conditional VAE example).

The quadrants given follow Pyro's example, so that its published numbers can be set beside
ours: one quadrant is the bottom-left one, two are the left half, three are all but the
bottom-right one. :func:`observe` turns images into the conditions a model sees (the visible
pixels, and :data:`MISSING` where a pixel is hidden) and the mask of the pixels to predict.

Two models predict the missing pixels. :class:`QuadrantRegressor` is a deterministic network
that maps the visible pixels to one probability per missing pixel, trained on their binary
cross-entropy (:func:`masked_cross_entropy`): one answer per input, so where the visible part
allows several digits it predicts their blurred average. A
:class:`vae_lib.ConditionalVAE` with ``condition_dim = 784`` and a learned prior samples
completions instead, one per draw of z. Both are trained on every number of given quadrants at
once (:func:`random_quadrant_counts`), which costs one model instead of three.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from . import arguments
from .checks import check_unit_interval
from .elementwise import softplus
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .training import cosine_schedule, make_adam
from .vae import ACTIVATIONS, mlp

#: The value a hidden pixel has in a condition (pixels themselves lie in [0, 1]).
MISSING = -1.0
#: The numbers of given quadrants.
QUADRANT_COUNTS = (1, 2, 3)


def visible_mask(n_given: int, height: int = 28, width: int = 28) -> torch.Tensor:
    """``(height, width)`` bool mask of the pixels given when ``n_given`` quadrants are: the
    bottom-left quadrant (1), the left half (2), or all but the bottom-right quadrant (3)."""
    n_given = arguments.one_of("n_given", n_given, QUADRANT_COUNTS)
    height, width = arguments.positive_int("height", height), arguments.positive_int("width", width)
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[height // 2 :, : width // 2] = True
    if n_given >= 2:
        mask[:, : width // 2] = True
    if n_given == 3:
        mask[: height // 2, :] = True
    return mask


def observe(x: torch.Tensor, n_given: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What a completion model sees of images ``x``, and what it must predict.

    Args:
        x: ``(B, 1, H, W)`` images in [0, 1].
        n_given: the number of given quadrants, one for all (an int) or one per image (a
            ``(B,)`` integer tensor), each in :data:`QUADRANT_COUNTS`.

    Returns:
        ``(c, missing)``: ``c (B, H*W)`` the visible pixels with :data:`MISSING` elsewhere
        (the condition of a :class:`vae_lib.ConditionalVAE`), and ``missing (B, 1, H, W)``
        bool, True at the pixels to predict.
    """
    arguments.float_tensor("x", x, shape="(B, 1, H, W)")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, 1, H, W)")
    height, width = x.shape[-2:]
    masks = torch.stack([visible_mask(n, height, width) for n in QUADRANT_COUNTS]).to(x.device)
    if isinstance(n_given, torch.Tensor):
        if n_given.shape != (x.shape[0],) or n_given.is_floating_point():
            raise ValueError(f"n_given must be an int or a ({x.shape[0]},) integer tensor")
        if not bool(((n_given >= 1) & (n_given <= 3)).all()):
            raise ValueError("every n_given must be 1, 2 or 3")
        visible = masks[n_given.to(x.device).long() - 1]
    else:
        visible = masks[arguments.one_of("n_given", n_given, QUADRANT_COUNTS) - 1].expand(
            x.shape[0], height, width
        )
    visible = visible.unsqueeze(1)
    c = torch.where(visible, x, torch.full_like(x, MISSING)).flatten(1)
    return c, ~visible


def random_quadrant_counts(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n,)`` numbers of given quadrants drawn uniformly from 1, 2, 3 (on the generator's
    device, the CPU if None)."""
    device = generator.device if generator is not None else None
    return torch.randint(1, 4, (n,), generator=generator, device=device)


def masked_cross_entropy(x: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of targets ``x`` under ``logits``, summed over the pixels of
    ``mask``: ``(B, ...)`` each -> ``(B,)`` nats. For binary x it is -log p(x_mask); for grey
    levels it is the cross-entropy Pyro's example reports."""
    if x.shape != logits.shape or mask.shape != x.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"x {tuple(x.shape)}, logits {tuple(logits.shape)} and the bool mask "
            f"{tuple(mask.shape)} must have the same shape"
        )
    check_unit_interval("x", x, "for a cross-entropy")
    per_pixel = softplus(logits) - x * logits  # -log p of each pixel
    return (per_pixel * mask).flatten(1).sum(1)


@dataclass(frozen=True)
class QuadrantRegressorConfig:
    """Settings of a :class:`QuadrantRegressor`.

    Attributes:
        input_shape: shape of one image, ``(1, H, W)``.
        hidden_dims: widths of the hidden layers.
        activation: hidden-layer nonlinearity, one of ``relu``, ``tanh``, ``elu``, ``softplus``.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden_dims: tuple[int, ...] = (500, 500)
    activation: str = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "input_shape", arguments.positive_ints("input_shape", self.input_shape)
        )
        object.__setattr__(
            self, "hidden_dims", arguments.positive_ints("hidden_dims", self.hidden_dims)
        )
        arguments.one_of("activation", self.activation, tuple(ACTIVATIONS))


class QuadrantRegressor(nn.Module):
    """The deterministic baseline: the visible pixels -> one logit per pixel.

    ``forward(c)`` maps ``(B, H*W)`` conditions of :func:`observe` to ``(B, 1, H, W)`` logits;
    only the missing pixels' logits are trained and scored.
    """

    def __init__(self, config: QuadrantRegressorConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else QuadrantRegressorConfig()
        n = math.prod(self.config.input_shape)
        self.net = mlp([n, *self.config.hidden_dims, n], self.config.activation)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        n = math.prod(self.input_shape)
        arguments.float_tensor("c", c, shape=f"(B, {n})")
        if c.dim() != 2 or c.shape[1] != n:
            raise ValueError(f"c has shape {tuple(c.shape)}; expected (B, {n})")
        return self.net(c).reshape(-1, *self.input_shape)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, n_given: int | torch.Tensor) -> torch.Tensor:
        """``x (B, 1, H, W)`` with its missing pixels replaced by the predicted probabilities."""
        c, missing = observe(x.to(self.device), n_given)
        return torch.where(missing, torch.sigmoid(self(c)), x.to(self.device))


def paired_minibatches(
    tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator
):
    """One shuffled epoch of minibatches of several tensors with a common first dimension,
    in an order drawn from ``generator`` (on the tensors' device)."""
    n = tensors[0].shape[0]
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield tuple(t[index] for t in tensors)


@torch.no_grad()
def regressor_cross_entropy(
    model: QuadrantRegressor, x: torch.Tensor, n_given: int, batch_size: int = 1000
) -> float:
    """Mean :func:`masked_cross_entropy` of the missing pixels of ``x (N, 1, H, W)`` given
    ``n_given`` quadrants, nats per image (the model in eval mode; its mode is restored)."""
    was_training = model.training
    model.eval()
    total = 0.0
    for xb in x.split(arguments.positive_int("batch_size", batch_size)):
        xb = xb.to(model.device)
        c, missing = observe(xb, n_given)
        total += masked_cross_entropy(xb, model(c), missing).sum().item()
    model.train(was_training)
    return total / x.shape[0]


#: The curves of :func:`fit_quadrant_regressor`: ``train_cross_entropy`` (nats per image over
#: the missing pixels, averaged over the epoch's minibatches with random quadrant counts) and,
#: with validation images, ``val_cross_entropy_1``, ``_2``, ``_3`` per number of given quadrants.
REGRESSOR_CURVES = ("train_cross_entropy",)


def fit_quadrant_regressor(
    model: QuadrantRegressor,
    train_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_x: torch.Tensor | None = None,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train ``model`` with Adam (learning rate decaying to 0 along a cosine) on the
    cross-entropy of the missing pixels; each image of a minibatch gets its own random number
    of given quadrants (:func:`random_quadrant_counts`).

    Args:
        model: a :class:`QuadrantRegressor`.
        train_x: ``(N, 1, H, W)`` grey-level images in [0, 1] (the targets are grey levels).
        epochs, batch_size, lr: the schedule.
        val_x: optional validation images, scored after each epoch for 1, 2 and 3 quadrants.
        progress: show a progress bar.
        seed: seeds the data order and the quadrant counts.
        checkpoint, checkpoint_seconds: a resumable run, as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` with :data:`REGRESSOR_CURVES` (and the validation curves).
    """
    if not isinstance(model, QuadrantRegressor):
        raise ValueError(f"model must be a QuadrantRegressor, got {type(model).__name__}")
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    seed = arguments.seed("seed", seed)
    train_x = arguments.data_set("train_x", train_x, input_shape=model.input_shape)
    check_unit_interval("train_x", train_x, "for a cross-entropy")
    if val_x is not None:
        val_x = arguments.data_set("val_x", val_x, input_shape=model.input_shape)
    device = model.device
    train_x = train_x.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = make_adam(model.parameters(), lr)
    n_batches = math.ceil(train_x.shape[0] / batch_size)
    scheduler = cosine_schedule(optimizer, epochs * n_batches)
    val_curves = (
        tuple(f"val_cross_entropy_{n}" for n in QUADRANT_COUNTS) if val_x is not None else ()
    )
    history = History(
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "lr_schedule": "cosine",
            "seed": seed,
            "n_train": int(train_x.shape[0]),
            "device": str(device),
        },
        **{name: [] for name in REGRESSOR_CURVES + val_curves},
    )

    def step(batch, epoch: int, batch_index: int, steps_done: int):
        (xb,) = batch
        c, missing = observe(xb, random_quadrant_counts(xb.shape[0], generator))
        loss_per_image = masked_cross_entropy(xb, model(c), missing)
        loss = loss_per_image.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss, loss_per_image.detach().sum().reshape(1)

    def evaluate() -> dict[str, float]:
        if val_x is None:
            return {}
        return {
            f"val_cross_entropy_{n}": regressor_cross_entropy(model, val_x, n)
            for n in QUADRANT_COUNTS
        }

    return train_loop(
        TrainingState(model, [optimizer], [scheduler], generator),
        history,
        epochs=epochs,
        batches=lambda: paired_minibatches((train_x,), batch_size, generator),
        n_batches=n_batches,
        n_examples=int(train_x.shape[0]),
        step=step,
        train_curves=REGRESSOR_CURVES,
        evaluate=evaluate,
        watch=NonFiniteWatch(device, hint=f"try a smaller learning rate (lr={lr})"),
        postfix=lambda values: {"train CE": f"{values['train_cross_entropy']:.2f}"},
        description="quadrant regressor",
        progress=progress,
        values_checked=True,
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )


#: The deterministic baseline of chapter 7.
QUADRANT_REGRESSOR_CONFIG = QuadrantRegressorConfig(input_shape=(1, 28, 28), hidden_dims=(256, 256))
#: How it is trained (grey-level targets, a random number of given quadrants per image).
QUADRANT_REGRESSOR_TRAINING = {
    "epochs": 60,
    "batch_size": 128,
    "lr": 1e-3,
    "train_split": "train",
    "val_split": "val",
}
