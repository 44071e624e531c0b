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

import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from . import arguments
from .checks import check_finite, check_unit_interval, value_checks_enabled
from .elementwise import softplus
from .training import FitOptions, Run, Trainable, eval_mode
from .vae import ACTIVATIONS, mlp

#: The value a hidden pixel has in a condition (pixels themselves lie in [0, 1]).
MISSING = -1.0
#: The numbers of given quadrants.
QUADRANT_COUNTS = (1, 2, 3)


def _quadrant_count(value: Any) -> int:
    """``value`` as one number of given quadrants, 1, 2 or 3: an int, a numpy int or a 0-d
    integer tensor (never a bool, a float such as ``2.0`` or a string)."""
    number = value
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not _is_count_dtype(value):
        raise ValueError(
            f"n_given must be one of {QUADRANT_COUNTS}, got a 0-d tensor of dtype {value.dtype}"
        )
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        number = value.item()
    if isinstance(number, numbers.Integral) and not isinstance(number, bool):
        number = int(number)
    return arguments.one_of("n_given", number, QUADRANT_COUNTS)


def _is_count_dtype(t: torch.Tensor) -> bool:
    """Whether ``t`` holds integers (not bools, floats or complex numbers)."""
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def visible_mask(n_given: int, height: int = 28, width: int = 28) -> torch.Tensor:
    """``(height, width)`` bool mask of the pixels given when ``n_given`` quadrants are: the
    bottom-left quadrant (1), the left half (2), or all but the bottom-right quadrant (3)."""
    n_given = _quadrant_count(n_given)
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
        n_given: the number of given quadrants, one for all (an int, a numpy int or a 0-d
            integer tensor) or one per image (a ``(B,)`` integer tensor; not bool), each in
            :data:`QUADRANT_COUNTS`.

    Returns:
        ``(c, missing)``: ``c (B, H*W)`` the visible pixels with :data:`MISSING` elsewhere
        (the condition of a :class:`vae_lib.ConditionalVAE`), and ``missing (B, 1, H, W)``
        bool, True at the pixels to predict.
    """
    arguments.float_tensor("x", x, shape="(B, 1, H, W)")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, 1, H, W)")
    check_unit_interval("x", x, "(grey levels; divide bytes 0-255 by 255)")
    if isinstance(n_given, torch.Tensor) and n_given.dim() > 0:
        expected = f"an int or a ({x.shape[0]},) integer tensor, one count per image"
        if not _is_count_dtype(n_given):
            raise ValueError(f"n_given must be {expected}, got a tensor of dtype {n_given.dtype}")
        if n_given.shape != (x.shape[0],):
            raise ValueError(f"n_given must be {expected}, got shape {tuple(n_given.shape)}")
        if n_given.numel() and value_checks_enabled():
            low, high = (int(v) for v in torch.aminmax(n_given))
            if low < 1 or high > 3:
                raise ValueError(f"every n_given must be 1, 2 or 3, got {low}..{high}")
    else:
        n_given = _quadrant_count(n_given)
    return _observe(x, n_given)


def _observe(x: torch.Tensor, n_given: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`observe` without its checks (for training steps, whose data was checked once)."""
    height, width = x.shape[-2:]
    masks = torch.stack([visible_mask(n, height, width) for n in QUADRANT_COUNTS]).to(x.device)
    if isinstance(n_given, torch.Tensor):
        visible = masks[n_given.to(x.device).long() - 1]
    else:
        visible = masks[n_given - 1].expand(x.shape[0], height, width)
    visible = visible.unsqueeze(1)
    c = torch.where(visible, x, torch.full_like(x, MISSING)).flatten(1)
    return c, ~visible


def random_quadrant_counts(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n,)`` numbers of given quadrants drawn uniformly from 1, 2, 3 (n >= 0; on the
    generator's device, the CPU if None)."""
    n = arguments.integer("n", n, minimum=0)
    arguments.generator("generator", generator)
    device = generator.device if generator is not None else None
    return torch.randint(1, 4, (n,), generator=generator, device=device)


def masked_cross_entropy(x: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of targets ``x`` under ``logits``, summed over the pixels of
    ``mask``: ``(B, ...)`` each -> ``(B,)`` nats. For binary x it is -log p(x_mask); for grey
    levels it is the cross-entropy Pyro's example reports.

    ``x`` (floats in [0, 1]) and ``logits`` (finite floats) have the same shape; ``mask`` is a
    bool tensor of that shape too, True at the pixels scored (:func:`observe`'s ``missing``).
    """
    arguments.float_tensor("x", x, shape="(B, ...)")
    arguments.float_tensor("logits", logits, shape="(B, ...), that of x")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = f"a {mask.dtype} tensor" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"mask must be a bool tensor of the same shape as x, True at the pixels scored "
            f"(observe gives it), got {got}"
        )
    if x.shape != logits.shape or mask.shape != x.shape:
        raise ValueError(
            f"x {tuple(x.shape)}, logits {tuple(logits.shape)} and the bool mask "
            f"{tuple(mask.shape)} must have the same shape"
        )
    check_unit_interval("x", x, "for a cross-entropy")
    check_finite("logits", logits)
    return _masked_cross_entropy(x, logits, mask)


def _masked_cross_entropy(
    x: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """:func:`masked_cross_entropy` without its checks."""
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


@dataclass(frozen=True)
class QuadrantRegressorOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`QuadrantRegressor`: the common ones, with
    the defaults of the old ``fit_quadrant_regressor`` (batches of 128, Adam at ``lr = 1e-3``
    decaying to 0 along a cosine, ``lr_schedule="cosine"``)."""

    lr_schedule: str | None = "cosine"


class QuadrantRegressor(Trainable):
    """The deterministic baseline: the visible pixels -> one logit per pixel.

    ``forward(c)`` maps ``(B, H*W)`` conditions of :func:`observe` to ``(B, 1, H, W)`` logits;
    only the missing pixels' logits are trained and scored.

    Trained by :func:`vae_lib.fit` on images alone, ``(N, 1, H, W)`` grey levels in [0, 1]
    (the targets are the grey levels): each image of a minibatch gets its own random number
    of given quadrants (:func:`random_quadrant_counts`, drawn from the run's generator) and
    the loss is the mean :func:`masked_cross_entropy` of its missing pixels. The history's
    curves: ``train_cross_entropy`` (nats per image over the missing pixels, the epoch's mean
    over random quadrant counts) and, with validation images, ``val_cross_entropy_1``,
    ``_2``, ``_3`` for 1, 2 and 3 given quadrants (as :func:`regressor_cross_entropy`).
    :func:`vae_lib.evaluate` returns those three, as ``cross_entropy_1`` ... ``_3``.

    Example::

        model = QuadrantRegressor(QuadrantRegressorConfig(hidden_dims=(256, 256)))
        history = fit(model, train_images, epochs=60, val=val_images)
        completed = model.complete(test_images, 1)   # (B, 1, 28, 28) in [0, 1]
    """

    Options = QuadrantRegressorOptions
    curves = ("cross_entropy",)
    Config = QuadrantRegressorConfig

    def __init__(self, config: QuadrantRegressorConfig | None = None) -> None:
        super().__init__(config)
        n = self.input_size
        self.net = mlp([n, *self.config.hidden_dims, n], self.config.activation)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """Logits of every pixel: ``c (B, H*W)`` (:func:`observe`: pixels in [0, 1], and
        :data:`MISSING` where hidden), of the model's dtype and on its device,
        ``-> (B, *input_shape)``."""
        self._check_input("c", c, (self.input_size,), on_device=True)
        _check_conditions("c", c)
        return self._forward(c)

    def _forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.net(c).reshape(-1, *self.input_shape)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, n_given: int | torch.Tensor) -> torch.Tensor:
        """``x (B, *input_shape)`` (grey levels in [0, 1], of the model's dtype, on any device)
        with its missing pixels replaced by the predicted probabilities, on the model's device;
        ``n_given`` as in :func:`observe`."""
        x = self._check_input("x", x).to(self.device)
        c, missing = observe(x, n_given)
        return torch.where(missing, torch.sigmoid(self._forward(c)), x)

    # -- training (vae_lib.fit) ---------------------------------------------------------------
    def training_data(self, data: Any, run: Run, *, name: str) -> torch.Tensor:
        """Images ``(N, *input_shape)``, grey levels in [0, 1] (checked once), on the model's
        device; ``input_shape`` must be ``(1, H, W)``, the images :func:`observe` takes."""
        if len(self.input_shape) != 3 or self.input_shape[0] != 1:
            raise ValueError(
                f"a QuadrantRegressor trains on images (1, H, W); its input_shape is "
                f"{self.input_shape}"
            )
        x = super().training_data(data, run, name=name)
        check_unit_interval(name, x, "for a cross-entropy (divide bytes 0-255 by 255)")
        return x

    def batches(self, data: torch.Tensor, run: Run) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled minibatches ``(images (B, 1, H, W), n_given (B,))``, the numbers of given
        quadrants drawn for each batch (:func:`random_quadrant_counts`) after the epoch's
        order, both from the run's generator."""
        for (xb,) in paired_minibatches((data,), run.options.batch_size, run.generator):
            yield xb, random_quadrant_counts(xb.shape[0], run.generator)

    def loss(
        self, batch: tuple[torch.Tensor, torch.Tensor], run: Run
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The mean cross-entropy of the missing pixels of ``batch = (images (B, 1, H, W),
        n_given (B,) or an int)``; the part is each image's, ``(B,)`` nats."""
        x, n_given = batch
        c, missing = _observe(x, n_given)
        per_image = _masked_cross_entropy(x, self._forward(c), missing)
        return per_image.mean(), {"cross_entropy": per_image}

    @torch.no_grad()
    def evaluation(self, data: torch.Tensor, run: Run, batch_size: int = 1000) -> dict[str, float]:
        """``cross_entropy_1``, ``_2``, ``_3``: the mean cross-entropy of the missing pixels of
        the prepared images given 1, 2 and 3 quadrants, nats per image (no random draws)."""
        return {
            f"cross_entropy_{n}": self._cross_entropy(data, n, batch_size) for n in QUADRANT_COUNTS
        }

    def _cross_entropy(self, x: torch.Tensor, n_given: int, batch_size: int) -> float:
        total = 0.0
        for xb in x.split(batch_size):
            xb = xb.to(self.device)
            c, missing = _observe(xb, n_given)
            total += _masked_cross_entropy(xb, self._forward(c), missing).sum().item()
        return total / x.shape[0]


def _check_conditions(name: str, c: torch.Tensor) -> None:
    """Every value of ``c`` is a pixel in [0, 1] or :data:`MISSING` (NaN fails; a value check,
    skipped inside :func:`vae_lib.checks.skip_value_checks`)."""
    if not c.numel() or not value_checks_enabled():
        return
    bad = ~(((c >= 0) & (c <= 1)) | (c == MISSING))
    if bool(bad.any()):
        first = c[bad][0].item()
        raise ValueError(
            f"{name} must hold visible pixels in [0, 1] and MISSING ({MISSING}) where a pixel is "
            f"hidden (what observe gives), but {int(bad.sum())} of its values are neither, "
            f"e.g. {first:.3g}"
        )


def paired_minibatches(
    tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, ...]]:
    """One shuffled epoch of minibatches of several tensors with a common first dimension,
    in an order drawn from ``generator`` (on the tensors' device)."""
    if (
        not isinstance(tensors, tuple | list)
        or not tensors
        or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors)
    ):
        raise ValueError("tensors must be a non-empty tuple of tensors with a first dimension")
    sizes = [t.shape[0] for t in tensors]
    if len(set(sizes)) != 1:
        raise ValueError(f"tensors must have a common first dimension, got sizes {sizes}")
    batch_size = arguments.positive_int("batch_size", batch_size)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return _paired_minibatches(tuple(tensors), batch_size, generator)


def _paired_minibatches(
    tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, ...]]:
    n = tensors[0].shape[0]
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield tuple(t[index] for t in tensors)


@torch.no_grad()
def regressor_cross_entropy(
    model: QuadrantRegressor, x: torch.Tensor, n_given: int, batch_size: int = 1000
) -> float:
    """Mean :func:`masked_cross_entropy` of the missing pixels of ``x (N, 1, H, W)`` (grey
    levels in [0, 1], N >= 1, of the model's dtype; on any device, moved to the model's a chunk
    at a time) given ``n_given`` quadrants, nats per image (the model in eval mode; its mode is
    restored)."""
    if not isinstance(model, QuadrantRegressor):
        raise ValueError(f"model must be a QuadrantRegressor, got {type(model).__name__}")
    x = arguments.data_set("x", x, input_shape=model.input_shape, dtype=model.dtype)
    check_unit_interval("x", x, "for a cross-entropy (divide bytes 0-255 by 255)")
    n_given = arguments.one_of("n_given", n_given, QUADRANT_COUNTS)
    batch_size = arguments.positive_int("batch_size", batch_size)
    with eval_mode(model):
        return model._cross_entropy(x, n_given, batch_size)
