"""The one training loop of the book: epochs of minibatch steps, a progress bar, per-epoch timing,
a non-finite check without host synchronisations, a :class:`History` of named curves, and
resumable checkpoints. :func:`vae_lib.fit` plugs each model's ``training_step`` into it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import arguments
from .checks import skip_value_checks


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class History:
    """Per-epoch learning curves of a training run, one list of floats per named curve.

    ``epoch`` numbers the epochs (from 1), ``seconds`` is the wall time of each epoch's training
    steps, ``settings`` the run's arguments; every other name is a curve, read as an attribute
    (``history.val_elbo``) or through :attr:`curves`. Which curves a run records depends on the
    loop: :func:`vae_lib.fit` records ``train_elbo``, ``train_reconstruction``, ``train_kl`` and
    their ``val_`` twins (ELBO terms in nats per example), the GAN's, RBM's and classifier's
    loops their own losses. Training values are averaged over the epoch's minibatches (as the
    model changed during the epoch); validation values are computed after the epoch.

    Example::

        h = History(epoch=[1, 2], train_elbo=[-120.0, -110.0], seconds=[3.1, 3.0])
        h.train_elbo[-1], h.total_seconds            # (-110.0, 6.1)
        History.from_dict(h.to_dict()) == h           # True
    """

    def __init__(
        self,
        epoch: Sequence[int] = (),
        seconds: Sequence[float] = (),
        settings: Mapping[str, Any] | None = None,
        **curves: Sequence[float],
    ) -> None:
        self.epoch = list(epoch)
        self.seconds = list(seconds)
        self.settings = dict(settings or {})
        self.curves = {name: list(values) for name, values in curves.items()}

    def __getattr__(self, name: str) -> list[float]:
        curves = self.__dict__.get("curves", {})
        if name in curves:
            return curves[name]
        raise AttributeError(
            f"this History has no curve {name!r}; it has {sorted(curves)} (and epoch, seconds, "
            "settings)"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        curves = ", ".join(self.curves)
        return f"History({len(self.epoch)} epochs; curves: {curves})"

    def append(self, epoch: int, seconds: float, values: Mapping[str, float]) -> None:
        """Record one finished epoch: its number, wall time and a value for named curves."""
        self.epoch.append(int(epoch))
        self.seconds.append(float(seconds))
        for name, value in values.items():
            self.curves.setdefault(name, []).append(float(value))

    @property
    def total_seconds(self) -> float:
        """Wall time of all epochs' training steps, in seconds."""
        return float(sum(self.seconds))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``epoch``, every curve, ``seconds`` and ``settings``."""
        return {
            "epoch": list(self.epoch),
            **{name: list(values) for name, values in self.curves.items()},
            "seconds": list(self.seconds),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """The inverse of :meth:`to_dict`."""
        return cls(**dict(d))


#: Seconds between progress-bar refreshes. In a notebook every refresh is a message from the
#: kernel; a training cell of several minutes at tqdm's default (10 per second) queues thousands,
#: more than Jupyter's output channel holds (about 1,000), and nbval then loses the cell's
#: end-of-execution message and fails it. Once a second is plenty for a run of minutes.
PROGRESS_REFRESH_SECONDS = 1.0


class NonFiniteWatch:
    """Catches a NaN or infinite loss without a host synchronisation on every step.

    Asking ``if not torch.isfinite(loss)`` each step makes the host wait for the device (on a
    GPU, the whole queue of kernels) before it can launch the next step. Instead, each step's
    values are copied into a small buffer on the device, and the buffer is checked every
    ``check_every`` steps and at the end of each epoch (:meth:`check`): a bad value still stops
    training, at most ``check_every`` steps late, with an error naming the first bad step.

    Example::

        watch = NonFiniteWatch(device, what="the loss", hint="try a smaller learning rate")
        for batch_index, xb in enumerate(batches, start=1):
            loss = ...
            watch.record(loss, epoch, batch_index, n_batches)
        watch.check()
    """

    def __init__(
        self,
        device: torch.device | str,
        *,
        what: str = "the loss",
        hint: str = "",
        n_values: int | None = None,
        check_every: int = 64,
    ) -> None:
        check_every = arguments.positive_int("check_every", check_every)
        self.what = what
        self.hint = hint
        self.check_every = check_every
        self.n_values = n_values  # None: as many as the first recorded step has
        self.device = torch.device(device)
        self._values: torch.Tensor | None = None  # allocated with the first value's dtype
        self._where: list[tuple[int, int, int]] = []

    def record(self, values: torch.Tensor, epoch: int, batch: int, n_batches: int) -> None:
        """Note this step's ``values``: a scalar or a vector, of the same size at every step
        (``n_values``, or the first step's size when that is ``None``); no sync."""
        if self._values is None:
            n = values.numel() if self.n_values is None else self.n_values
            self._values = torch.zeros(self.check_every, n, device=self.device, dtype=values.dtype)
        self._values[len(self._where)].copy_(values.detach().reshape(-1))
        self._where.append((epoch, batch, n_batches))
        if len(self._where) == self.check_every:
            self.check()

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if a recorded value is NaN or infinite."""
        n = len(self._where)
        if n == 0 or self._values is None:
            return
        finite = torch.isfinite(self._values[:n]).all(dim=1)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            epoch, batch, n_batches = self._where[first]
            values = ", ".join(f"{v:.4g}" for v in self._values[first].tolist())
            hint = f"; {self.hint}" if self.hint else ""
            raise NonFiniteLossError(
                f"{self.what} became non-finite ({values}) at epoch {epoch}, batch {batch} of "
                f"{n_batches}{hint}"
            )
        self._where.clear()


CHECKPOINT_FORMAT = 2


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide a run's result (the device may change between sessions)."""
    return {k: v for k, v in settings.items() if k != "device"}


def _global_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random states a step may draw from besides its generator (dropout uses them)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_global_rng_state(device: torch.device, state: Mapping[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"])


class TrainingState:
    """Everything a run changes and a resumed run must restore: the model, its optimizers and
    schedules, the random generator, the global random state (dropout draws from it), and named
    tensors of the loop's own (for example the persistent Gibbs chains of an RBM), kept in
    :attr:`tensors` for the step to read and replace."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence[Any],
        generator: torch.Generator,
        tensors: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.optimizers = list(optimizers)
        self.schedulers = list(schedulers)
        self.generator = generator
        self.tensors = dict(tensors or {})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def save(self, path: Path, history: History, epoch: int, step: int) -> None:
        """Write a resumable state after ``epoch`` (atomically: a temporary file, renamed)."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "step": step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "generator": self.generator.get_state(),
            "global_rng": _global_rng_state(self.device),
            "tensors": {k: v.detach().cpu() for k, v in self.tensors.items()},
            "history": history.to_dict(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # unique to this process and thread: two runs writing one checkpoint never collide
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def resume(self, path: Path, history: History) -> tuple[int, int]:
        """Restore a :meth:`save`\\ d state into this one and ``history``; returns the first
        epoch still to run and the number of steps done."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            stored = History.from_dict(state["history"])
            format_ = state.get("format")
        except Exception as err:
            raise ValueError(
                f"the checkpoint {path} could not be read ({type(err).__name__}: {err}); "
                "delete it to start the run again"
            ) from err
        if format_ != CHECKPOINT_FORMAT or _comparable(stored.settings) != _comparable(
            history.settings
        ):
            raise ValueError(
                f"the checkpoint {path} was written by a run with other settings or another "
                f"version of vae_lib ({_comparable(stored.settings)}, format {format_!r}; now "
                f"{_comparable(history.settings)}, format {CHECKPOINT_FORMAT}); delete it, or "
                "give this run its own checkpoint file"
            )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"the checkpoint {path} holds another model's weights: {err}") from err
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        self.generator.set_state(state["generator"])
        _set_global_rng_state(self.device, state["global_rng"])
        self.tensors.update({k: v.to(self.device) for k, v in state["tensors"].items()})
        history.epoch, history.seconds = stored.epoch, stored.seconds
        history.curves = stored.curves
        return int(state["epoch"]) + 1, int(state["step"])


#: ``step(batch, epoch, batch_index, step) -> (watched, sums)``: one optimisation step on a
#: minibatch. ``watched`` are the values the non-finite check watches (a scalar or a vector);
#: ``sums`` a ``(len(train_curves),)`` tensor of the step's contributions to the epoch's
#: training curves, each divided by ``n_examples`` at the epoch's end.
Step = Callable[[Any, int, int, int], tuple[torch.Tensor, torch.Tensor]]


def train_loop(
    state: TrainingState,
    history: History,
    *,
    epochs: int,
    batches: Callable[[], Iterable[Any]],
    n_batches: int,
    n_examples: int,
    step: Step,
    train_curves: Sequence[str],
    evaluate: Callable[[], Mapping[str, float]] | None = None,
    watch: NonFiniteWatch,
    postfix: Callable[[Mapping[str, float]], Mapping[str, str]] = lambda values: {},
    description: str = "training",
    progress: bool = True,
    values_checked: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Run ``epochs`` epochs of ``step`` over ``batches()``, recording ``history``.

    Each epoch: the model in train mode, one ``step`` per minibatch (then every schedule steps
    once), the non-finite check at the epoch's end, the epoch's mean training values (the
    ``sums`` of its steps over ``n_examples``) and, if given, the values ``evaluate()`` returns
    (validation curves, computed after the epoch) appended to ``history``. The device is asked
    for values only at the epoch's end and by the watch every few dozen steps.

    Args:
        state: the model, optimizers, schedules, generator and loop tensors of the run.
        history: where the curves go (its ``settings`` describe the run; a checkpoint of a run
            with other settings is refused).
        epochs: passes over the data (>= 1).
        batches: a new iterator over the minibatches of one epoch (it draws the order from
            the state's generator).
        n_batches: minibatches per epoch.
        n_examples: examples per epoch.
        step: one optimisation step (:data:`Step`).
        train_curves: names of the training curves, in the order of the step's ``sums``.
        evaluate: returns the epoch's other curves, by name (``None``: none).
        watch: the non-finite check of the step's watched values.
        postfix: the progress bar's text from the epoch's values.
        description: the progress bar's label.
        progress: show a ``tqdm`` progress bar.
        values_checked: the data's values were checked once before training, so the steps may
            skip their per-batch checks (:func:`vae_lib.checks.skip_value_checks`).
        checkpoint: optional file for a resumable run. After an epoch, once at least
            ``checkpoint_seconds`` have passed since the last save (and after the last epoch),
            the whole state and the history are written there. If the file exists when the
            loop starts, training continues after its last epoch, with the same result on the
            same machine as an uninterrupted run.
        checkpoint_seconds: least wall time between two checkpoint saves.

    Returns:
        ``history``, holding the whole run (also when resumed); the model is left in eval mode.
    """
    epochs = arguments.positive_int("epochs", epochs)
    first_epoch, step_count = 1, 0
    if checkpoint is not None:
        if not checkpoint_seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
        checkpoint = Path(checkpoint)
        if checkpoint.exists():
            first_epoch, step_count = state.resume(checkpoint, history)
    model = state.model
    last_save = time.monotonic()
    bar = tqdm(
        total=epochs * n_batches,
        initial=step_count,
        desc=description,
        unit="batch",
        disable=not progress,
        mininterval=PROGRESS_REFRESH_SECONDS,
    )
    try:
        for epoch in range(first_epoch, epochs + 1):
            model.train()
            start = time.perf_counter()
            sums: torch.Tensor | None = None  # in the dtype of the step's contributions
            with skip_value_checks() if values_checked else nullcontext():
                for batch_index, batch in enumerate(batches(), start=1):
                    watched, contribution = step(batch, epoch, batch_index, step_count)
                    watch.record(watched, epoch, batch_index, n_batches)
                    for scheduler in state.schedulers:
                        scheduler.step()
                    step_count += 1
                    if sums is None:
                        sums = torch.zeros_like(contribution)
                    sums += contribution
                    bar.update(1)
            if sums is None:
                raise ValueError("batches() gave no minibatch")
            watch.check()
            seconds = time.perf_counter() - start
            values = dict(zip(train_curves, (sums / n_examples).tolist(), strict=True))
            if evaluate is not None:
                values.update(evaluate())
            history.append(epoch, seconds, values)
            bar.set_postfix(dict(postfix(values)))
            due = time.monotonic() - last_save >= checkpoint_seconds or epoch == epochs
            if checkpoint is not None and due:
                state.save(checkpoint, history, epoch, step_count)
                last_save = time.monotonic()
    finally:
        bar.close()
    model.eval()
    return history
