"""A small MNIST digit classifier, the book's judge of generated images.

It answers "is this decoding a confident digit?" (:func:`confidence`) and gives a feature space
(:meth:`DigitClassifier.features`, the last hidden layer) for Fréchet distances between sets of
images. :class:`DigitClassifier` is an MLP, optionally behind 3x3 convolutions; the book's
shared copy is a small convolutional network, trained once and loaded from the model zoo by
``zoo.load("digit_classifier")``.

It is trained by :func:`vae_lib.fit` on ``(images, labels)``, with the options of
:class:`ClassifierOptions`: on a mix of grey-level and binarized digits (a share
``binarize_fraction`` of every minibatch is replaced by a Bernoulli draw of itself), so that it
is at home with both the blurry grey means of a decoder and binary samples, and on digits
shifted by up to ``max_shift`` pixels::

    model = DigitClassifier(ClassifierConfig(conv_channels=(32, 64), hidden_dims=(128,)))
    history = fit(model, (images, labels), epochs=12, val=(val_images, val_labels),
                  binarize_fraction=0.5, max_shift=2)
    history.val_accuracy[-1]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from . import arguments
from .checks import check_unit_interval
from .data import binarize_images, minibatches
from .training import FitOptions, Run, Trainable, eval_mode

#: What the pixel check says to do about other values.
_PIXELS = "(grey levels; divide bytes 0-255 by 255)"


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of a :class:`DigitClassifier`.

    Attributes:
        input_shape: shape of one image, ``(1, 28, 28)`` for MNIST.
        conv_channels: output channels of 3x3 convolutions (padding 1, ReLU, then 2x2 max
            pooling), applied before the fully connected layers; ``()`` for an MLP. Each
            pooling halves H and W (rounding down).
        hidden_dims: widths of the hidden ReLU layers (at least one); the last one is the
            feature space of :meth:`DigitClassifier.features`.
        n_classes: number of classes (10 digits).
        dropout: dropout probability after every hidden layer but the last (0 disables it).
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    hidden_dims: tuple[int, ...] = (512, 256)
    n_classes: int = 10
    dropout: float = 0.0
    conv_channels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("input_shape", "hidden_dims", "conv_channels"):
            value = arguments.positive_ints(
                name, getattr(self, name), allow_empty=name == "conv_channels"
            )
            object.__setattr__(self, name, value)
        n_classes = arguments.integer("n_classes", self.n_classes, minimum=2)
        object.__setattr__(self, "n_classes", n_classes)
        if self.conv_channels:
            if len(self.input_shape) != 3:
                raise ValueError(
                    f"conv_channels need images (C, H, W); got "
                    f"input_shape {self.input_shape}, conv_channels {self.conv_channels}"
                )
            if min(self.input_shape[1:]) >> len(self.conv_channels) < 1:
                raise ValueError(
                    f"{len(self.conv_channels)} poolings leave nothing of {self.input_shape}"
                )
        object.__setattr__(self, "dropout", arguments.probability("dropout", self.dropout))


@dataclass(frozen=True)
class ClassifierOptions(FitOptions):
    """:func:`vae_lib.fit`'s settings for a :class:`DigitClassifier` (the defaults of the old
    ``fit_classifier``: batches of 128, Adam at ``lr = 1e-3`` decaying to 0 along a cosine).

    Attributes:
        lr_schedule: ``"cosine"`` by default (``None``: a constant ``lr``).
        binarize_fraction: each training image of a minibatch is replaced, with this
            probability, by a fresh Bernoulli draw of its pixels (0: trains on the images as
            they are; 1: always binarized). Validation images are never binarized.
        max_shift: each training image is shifted by up to this many pixels in each direction
            (:func:`random_shift`; 0: no shifts). Validation images are never shifted.
    """

    lr_schedule: str | None = "cosine"
    binarize_fraction: float = 0.0
    max_shift: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set(
            "binarize_fraction",
            arguments.probability("binarize_fraction", self.binarize_fraction, allow_one=True),
        )
        self._set("max_shift", arguments.integer("max_shift", self.max_shift, minimum=0))


class DigitClassifier(Trainable):
    """A classifier: image -> [conv_channels (3x3 conv, ReLU, 2x2 max pool)] -> hidden_dims
    (ReLU) -> n_classes logits.

    Trained by :func:`vae_lib.fit` on ``(images (N, *input_shape) in [0, 1], labels (N,)
    integers in [0, n_classes))`` with :class:`ClassifierOptions`; the history's curves are
    ``train_loss`` / ``val_loss`` (the cross-entropy, nats per image) and ``train_accuracy`` /
    ``val_accuracy`` (a fraction). Training values are means over the epoch's augmented
    minibatches, as the model changed during the epoch; validation values are measured on the
    plain validation images after each epoch.

    Example::

        model, _ = zoo.load("digit_classifier")
        p = model.predict_proba(images)      # (B, 10), rows sum to 1
        f = model.features(images)           # (B, 256), for a Fréchet distance
    """

    Options = ClassifierOptions
    curves = ("loss", "accuracy")
    #: :func:`vae_lib.fit` takes ``(images, labels)`` (and the zoo passes them).
    uses_labels: ClassVar[bool] = True
    Config = ClassifierConfig

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        layers: list[nn.Module] = []
        shape = c.input_shape  # (C, H, W) through the convolutions
        for out in c.conv_channels:
            layers += [nn.Conv2d(shape[0], out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            shape = (out, shape[1] // 2, shape[2] // 2)
        layers.append(nn.Flatten())
        n_in = math.prod(shape)
        for i, width in enumerate(c.hidden_dims):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            if c.dropout > 0 and i < len(c.hidden_dims) - 1:
                layers.append(nn.Dropout(c.dropout))
            n_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, c.n_classes)

    @property
    def n_classes(self) -> int:
        return int(self.config.n_classes)

    @property
    def feature_dim(self) -> int:
        """F, the width of the last hidden layer."""
        return int(self.config.hidden_dims[-1])

    def _check_x(self, x: torch.Tensor) -> None:
        """``x`` must be floating-point images ``(B, *input_shape)``."""
        arguments.shaped_tensor("x", x, self.input_shape)

    # -- the network --------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer activations (after ReLU): ``(B, *input_shape) -> (B, F)``."""
        self._check_x(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: ``(B, *input_shape) -> (B, n_classes)``."""
        self._check_x(x)
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities ``(B, n_classes)`` on the model's device, rows summing to 1.

        Computed in eval mode, without gradients, ``batch_size`` images at a time (``x`` may be
        on another device; each chunk is moved to the model's).
        """
        self._check_x(x)
        batch_size = arguments.positive_int("batch_size", batch_size)
        return self._predict_proba(x, batch_size)

    @torch.no_grad()
    def _predict_proba(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        with eval_mode(self):
            chunks = [
                torch.softmax(self._logits(xb.to(self.device)), dim=-1)
                for xb in x.split(batch_size)
            ]
        if not chunks:
            return torch.empty(0, self.n_classes, device=self.device)
        return torch.cat(chunks)

    # -- training (vae_lib.fit) ---------------------------------------------------------------
    def training_data(self, data: Any, run: Run, *, name: str) -> tuple[torch.Tensor, ...]:
        """``data = (images (N, *input_shape) in [0, 1], labels (N,) integers in [0,
        n_classes))`` checked once and moved to the model's device."""
        if not isinstance(data, tuple | list) or len(data) != 2:
            raise ValueError(
                f"{name} must be a pair (images, labels) for a DigitClassifier, got "
                f"{type(data).__name__}"
                + (f" of {len(data)} items" if isinstance(data, tuple | list) else "")
            )
        images, labels = data
        x = arguments.data_set(
            f"{name} images", images, input_shape=self.input_shape, dtype=self.dtype
        )
        check_unit_interval(f"{name} images", x, _PIXELS)
        _check_labels(labels, x.shape[0], self.n_classes, name=f"{name} labels")
        if run.options.max_shift and len(self.input_shape) < 2:
            raise ValueError(
                f"max_shift needs images (..., H, W); input_shape is {self.input_shape}"
            )
        return x.to(self.device), labels.to(self.device)

    def batches(
        self, data: tuple[torch.Tensor, torch.Tensor], run: Run
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled minibatches ``(images, labels)``, the images augmented: a share
        ``binarize_fraction`` binarized, then each shifted by up to ``max_shift`` pixels (the
        draws from the run's generator: the order, then for each batch the Bernoulli pixels,
        which images take them, and the shifts)."""
        x, y = data
        o = run.options
        indices = torch.arange(x.shape[0], device=x.device)
        for index in minibatches(indices, o.batch_size, shuffle=True, generator=run.generator):
            yield _augment(x[index], o, run.generator), y[index]

    def loss(
        self, batch: tuple[torch.Tensor, torch.Tensor], run: Run
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The mean cross-entropy of ``batch = (images (B, *input_shape), labels (B,))``; the
        parts are each image's cross-entropy, ``(B,)`` nats, and whether its most probable
        class is its label, ``(B,)`` 0 or 1."""
        x, y = batch
        logits = self._logits(x)
        loss = nn.functional.cross_entropy(logits, y)
        with torch.no_grad():
            per_image = nn.functional.cross_entropy(logits, y, reduction="none")
            correct = (logits.argmax(dim=-1) == y).to(logits.dtype)
        return loss, {"loss": per_image, "accuracy": correct}


def _augment(x: torch.Tensor, options: ClassifierOptions, generator: torch.Generator):
    """A minibatch as the classifier trains on it: each image binarized with probability
    ``binarize_fraction`` (a fresh Bernoulli draw), then shifted by up to ``max_shift``."""
    if options.binarize_fraction > 0:
        drawn = binarize_images(x, "dynamic", generator)
        pick = torch.rand(len(x), generator=generator, device=x.device)
        pick = (pick < options.binarize_fraction).view(-1, *[1] * (x.dim() - 1))
        x = torch.where(pick, drawn, x)
    return random_shift(x, options.max_shift, generator)


def _check_labels(y: Any, n: int, n_classes: int, name: str = "y") -> None:
    """Refuse anything but a 1-D integer tensor of ``n`` labels in ``[0, n_classes)`` (a
    ``(n, 1)`` column is refused, not broadcast)."""
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(
            f"{name} must be an integer tensor of class labels, shape ({n},), got "
            + (f"dtype {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__)
        )
    if y.is_complex():
        raise ValueError(f"{name} must be an integer tensor of class labels, got {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} has shape {tuple(y.shape)}; expected ({n},), one label per image")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} must hold labels in [0, {n_classes}); got [{y.min().item()}, {y.max().item()}]"
        )


def confidence(model: DigitClassifier, x: torch.Tensor) -> torch.Tensor:
    """The largest class probability of each image ``x (B, *input_shape)`` (pixels in
    [0, 1]), ``(B,)`` in [1/n_classes, 1]."""
    model._check_x(x)
    check_unit_interval("x", x, _PIXELS)
    return model._predict_proba(x).max(dim=-1).values


def accuracy(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the images ``x (N, *input_shape)`` (pixels in [0, 1]) whose most probable
    class is ``y (N,)`` (integer labels in ``[0, n_classes)``)."""
    model._check_x(x)
    _check_labels(y, x.shape[0], model.n_classes)
    if x.shape[0] == 0:
        raise ValueError("accuracy needs at least one image")
    check_unit_interval("x", x, _PIXELS)
    predicted = model._predict_proba(x).argmax(dim=-1)
    return (predicted == y.to(predicted.device)).float().mean().item()


def random_shift(
    x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Translate every image of ``x (B, ..., H, W)`` by its own random offset.

    Each image moves by ``dy, dx`` drawn uniformly from ``{-max_shift, ..., max_shift}``;
    the pixels that come in are zeros (background).
    """
    if max_shift == 0:
        return x
    *lead, h, w = x.shape
    s = max_shift
    padded = nn.functional.pad(x, (s, s, s, s)).flatten(start_dim=-2)  # (B, ..., P)
    width = w + 2 * s
    rows = torch.arange(h, device=x.device)[:, None] * width
    base = (rows + torch.arange(w, device=x.device)[None, :]).flatten()  # (H * W,)
    d = torch.randint(0, 2 * s + 1, (2, lead[0]), generator=generator, device=x.device)
    index = base + (d[0] * width + d[1]).view(-1, *[1] * (len(lead) - 1), 1)
    return padded.gather(-1, index.expand(*lead, h * w)).view(x.shape)
