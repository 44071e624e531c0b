"""A small MNIST digit classifier, the book's judge of generated images.

It answers "is this decoding a confident digit?" (:func:`confidence`) and gives a feature space
(:meth:`DigitClassifier.features`, the last hidden layer) for Fréchet distances between sets of
images. :class:`DigitClassifier` is an MLP, optionally behind 3x3 convolutions; the book's
shared copy (:data:`CLASSIFIER_CONFIG`) is a small convolutional network, trained once and
loaded from the model zoo by ``zoo.load("digit_classifier")``.

It is trained on a mix of grey-level and binarized digits (half of every minibatch is replaced
by a Bernoulli draw of itself), so it is at home with both the blurry grey means of a decoder
and binary samples, and on digits shifted by up to two pixels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from . import arguments
from .checks import check_unit_interval
from .data import binarize_images, minibatches
from .loop import History, NonFiniteWatch, TrainingState, train_loop
from .training import cosine_schedule, make_adam


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


class DigitClassifier(nn.Module):
    """A classifier: image -> [conv_channels (3x3 conv, ReLU, 2x2 max pool)] -> hidden_dims
    (ReLU) -> n_classes logits.

    Example::

        model, _ = zoo.load("digit_classifier")
        p = model.predict_proba(images)      # (B, 10), rows sum to 1
        f = model.features(images)           # (B, 256), for a Fréchet distance
    """

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ClassifierConfig()
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
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.config.input_shape)

    @property
    def n_classes(self) -> int:
        return int(self.config.n_classes)

    @property
    def feature_dim(self) -> int:
        """F, the width of the last hidden layer."""
        return int(self.config.hidden_dims[-1])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_x(self, x: torch.Tensor) -> None:
        expected = f"(B, {', '.join(map(str, self.input_shape))})"
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor of shape {expected}")
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected {expected}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer activations (after ReLU): ``(B, *input_shape) -> (B, F)``."""
        self._check_x(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: ``(B, *input_shape) -> (B, n_classes)``."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities ``(B, n_classes)`` on the model's device, rows summing to 1.

        Computed in eval mode, without gradients, ``batch_size`` images at a time (``x`` may be
        on another device; each chunk is moved to the model's).
        """
        self._check_x(x)
        batch_size = arguments.positive_int("batch_size", batch_size)
        was_training = self.training
        self.eval()
        try:
            chunks = [torch.softmax(self(xb.to(self.device)), dim=-1) for xb in x.split(batch_size)]
        finally:
            self.train(was_training)
        if not chunks:
            return torch.empty(0, self.n_classes, device=self.device)
        return torch.cat(chunks)


def _check_labels(y: torch.Tensor, n: int, n_classes: int, name: str = "y") -> None:
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor of class labels, shape ({n},)")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} has shape {tuple(y.shape)}; expected ({n},), one label per image")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} must hold labels in [0, {n_classes}); got [{y.min().item()}, {y.max().item()}]"
        )


def confidence(model: DigitClassifier, x: torch.Tensor) -> torch.Tensor:
    """The largest class probability of each image, ``(B,)`` in [1/n_classes, 1]."""
    return model.predict_proba(x).max(dim=-1).values


def accuracy(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the images ``x (N, *input_shape)`` whose most probable class is ``y (N,)``."""
    model._check_x(x)
    _check_labels(y, x.shape[0], model.n_classes)
    if x.shape[0] == 0:
        raise ValueError("accuracy needs at least one image")
    predicted = model.predict_proba(x).argmax(dim=-1)
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


#: The curves of :func:`fit_classifier`'s :class:`vae_lib.History`: ``train_loss`` (mean
#: cross-entropy, nats) and ``train_accuracy`` are averaged over the epoch's (augmented)
#: minibatches, as the model changed during the epoch; ``val_accuracy`` is measured on the
#: validation images after each epoch (empty without them).
CLASSIFIER_CURVES = ("train_loss", "train_accuracy", "val_accuracy")


def fit_classifier(
    model: DigitClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_x: torch.Tensor | None = None,
    val_y: torch.Tensor | None = None,
    binarize_fraction: float = 0.0,
    max_shift: int = 0,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train ``model`` with Adam on the cross-entropy of minibatches of ``(x, y)``.

    The learning rate decays from ``lr`` to 0 along a cosine over all the steps. The data is
    moved once to the model's device.

    Args:
        model: a :class:`DigitClassifier`.
        x: ``(N, *input_shape)`` images in memory (grey levels in [0, 1] if
            ``binarize_fraction > 0``).
        y: ``(N,)`` integer labels in ``[0, n_classes)``.
        epochs: passes over the data (>= 1).
        batch_size: images per step.
        lr: initial Adam learning rate.
        val_x, val_y: optional validation images and labels, scored after every epoch.
        binarize_fraction: each training image is replaced, with this probability, by a fresh
            Bernoulli draw of its pixels (0 trains on ``x`` as it is).
        max_shift: shift every training image by up to this many pixels (0: no shifts).
        progress: show a ``tqdm`` progress bar.
        seed: seeds the data order and the augmentation draws.
        checkpoint, checkpoint_seconds: a resumable run, as in :func:`vae_lib.fit`.

    Returns:
        :class:`vae_lib.History` of the run, with the curves :data:`CLASSIFIER_CURVES`; the
        model is left in eval mode.

    Raises:
        NonFiniteLossError: if the loss becomes NaN or infinite.
    """
    if not isinstance(model, DigitClassifier):
        raise ValueError(f"model must be a DigitClassifier, got {type(model).__name__}")
    epochs = arguments.positive_int("epochs", epochs)
    batch_size = arguments.positive_int("batch_size", batch_size)
    lr = arguments.real("lr", lr, minimum=0.0, strict_minimum=True)
    binarize_fraction = arguments.probability(
        "binarize_fraction", binarize_fraction, allow_one=True
    )
    max_shift = arguments.integer("max_shift", max_shift, minimum=0)
    if max_shift and len(model.input_shape) < 2:
        raise ValueError(f"max_shift needs images (..., H, W); input_shape is {model.input_shape}")
    model._check_x(x)
    if x.shape[0] < 1:
        raise ValueError("x must hold at least one image")
    _check_labels(y, x.shape[0], model.n_classes)
    if (val_x is None) != (val_y is None):
        raise ValueError("give both val_x and val_y, or neither")
    if val_x is not None:
        model._check_x(val_x)
        _check_labels(val_y, val_x.shape[0], model.n_classes, name="val_y")
        if val_x.shape[0] < 1:
            raise ValueError("val_x must hold at least one image")
    if binarize_fraction > 0:
        check_unit_interval("x", x, "for binarize_fraction > 0")

    device = model.device
    x, y = x.to(device), y.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = make_adam(model.parameters(), lr)
    n = x.shape[0]
    n_batches = math.ceil(n / batch_size)
    total_steps = epochs * n_batches
    scheduler = cosine_schedule(optimizer, total_steps)
    history = History(
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "schedule": "cosine",
            "binarize_fraction": binarize_fraction,
            "max_shift": max_shift,
            "seed": seed,
            "n_train": int(n),
            "device": str(device),
        },
        **{name: [] for name in CLASSIFIER_CURVES},
    )

    def step(idx: torch.Tensor, epoch: int, batch_index: int, steps_done: int):
        xb, yb = x[idx], y[idx]
        if binarize_fraction > 0:
            drawn = binarize_images(xb, "dynamic", generator)
            pick = torch.rand(len(xb), generator=generator, device=device)
            pick = (pick < binarize_fraction).view(-1, *[1] * (xb.dim() - 1))
            xb = torch.where(pick, drawn, xb)
        xb = random_shift(xb, max_shift, generator)
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            correct = (logits.argmax(dim=-1) == yb).sum()
            return loss, torch.stack([loss.detach() * len(yb), correct.to(loss.dtype)])

    def postfix(values) -> dict[str, str]:
        text = {
            "loss": f"{values['train_loss']:.3f}",
            "train acc": f"{values['train_accuracy']:.4f}",
        }
        if "val_accuracy" in values:
            text["val acc"] = f"{values['val_accuracy']:.4f}"
        return text

    indices = torch.arange(n, device=device)
    return train_loop(
        TrainingState(model, [optimizer], [scheduler], generator),
        history,
        epochs=epochs,
        batches=lambda: minibatches(indices, batch_size, shuffle=True, generator=generator),
        n_batches=n_batches,
        n_examples=int(n),
        step=step,
        train_curves=("train_loss", "train_accuracy"),
        evaluate=(lambda: {"val_accuracy": accuracy(model, val_x, val_y)})
        if val_x is not None
        else None,
        watch=NonFiniteWatch(device, hint=f"try a smaller learning rate (lr={lr})"),
        postfix=postfix,
        description="training classifier",
        progress=progress,
        values_checked=True,  # x was checked above
        checkpoint=checkpoint,
        checkpoint_seconds=checkpoint_seconds,
    )


#: Architecture of the shared classifier: two 3x3 convolutions (32 and 64 channels, each
#: followed by 2x2 max pooling) and one hidden layer of 128 units, its feature space.
CLASSIFIER_CONFIG = ClassifierConfig(
    input_shape=(1, 28, 28), conv_channels=(32, 64), hidden_dims=(128,), n_classes=10
)
#: How it is trained (the recipe of its zoo entry): shifted by up to 2 pixels, and half the
#: images binarized, so that it also reads the binary images the models generate.
CLASSIFIER_TRAINING = {
    "epochs": 12,
    "batch_size": 128,
    "lr": 1e-3,
    "binarize_fraction": 0.5,
    "max_shift": 2,
    "train_split": "train",
    "val_split": "val",
}
