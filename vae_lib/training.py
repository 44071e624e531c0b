"""Training a VAE by stochastic gradient ascent on the (beta-weighted) ELBO."""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checks import check_unit_interval, skip_value_checks
from .data import BINARIZATIONS, binarize_images, minibatches


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class History:
    """Per-epoch learning curves; all ELBO values are averages per example, in nats.

    ``*_elbo`` is always the true ELBO, reconstruction - KL, whatever ``beta`` training used.
    Training values are averaged over the epoch's minibatches (as the model changed during the
    epoch); validation values are computed after the epoch. ``seconds`` is the wall time of each
    epoch's training steps.
    """

    epoch: list[int] = field(default_factory=list)
    train_elbo: list[float] = field(default_factory=list)
    train_reconstruction: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    val_elbo: list[float] = field(default_factory=list)
    val_reconstruction: list[float] = field(default_factory=list)
    val_kl: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**d)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))


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
        n_values: int = 1,
        check_every: int = 64,
    ) -> None:
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"check_every must be an int >= 1, got {check_every!r}")
        self.what = what
        self.hint = hint
        self.check_every = check_every
        self.n_values = n_values
        self.device = torch.device(device)
        self._values: torch.Tensor | None = None  # allocated with the first value's dtype
        self._where: list[tuple[int, int, int]] = []

    def record(self, values: torch.Tensor, epoch: int, batch: int, n_batches: int) -> None:
        """Note this step's ``values`` (a scalar or ``(n_values,)`` tensor; no sync)."""
        if self._values is None:
            self._values = torch.zeros(
                self.check_every, self.n_values, device=self.device, dtype=values.dtype
            )
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


LR_SCHEDULES = (None, "cosine")

#: Seconds between progress-bar refreshes. In a notebook every refresh is a message from the
#: kernel; a training cell of several minutes at tqdm's default (10 per second) queues thousands,
#: more than Jupyter's output channel holds (about 1,000), and nbval then loses the cell's
#: end-of-execution message and fails it. Once a second is plenty for a run of minutes.
PROGRESS_REFRESH_SECONDS = 1.0


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate from its initial value down to 0 along half a cosine over ``total_steps``
    steps (call ``scheduler.step()`` after every optimizer step)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step / total_steps, 1.0)))
    )


def _free_bits_kl(out, free_bits: float) -> torch.Tensor:
    """sum_d max(free_bits, mean over the batch of KL_d): the KL term of the free-bits loss."""
    if getattr(out, "mu", None) is None or getattr(out, "logvar", None) is None:
        raise ValueError("free_bits needs a model whose outputs have mu and logvar (a VAE)")
    kl_per_dim = 0.5 * (out.logvar.exp() + out.mu.pow(2) - 1.0 - out.logvar).mean(0)
    return torch.clamp(kl_per_dim, min=free_bits).sum()


CHECKPOINT_FORMAT = 1


def _comparable(settings: dict) -> dict:
    """The settings that decide a run's result (the device may change between sessions)."""
    return {k: v for k, v in settings.items() if k != "device"}


def _save_checkpoint(path, model, optimizer, scheduler, generator, history, epoch, step) -> None:
    """Write a resumable state of :func:`fit` after ``epoch`` (atomically: tmp file + rename)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generator": generator.get_state(),
        "history": history.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(path, model, optimizer, scheduler, generator, history) -> tuple[int, int]:
    """Restore a :func:`_save_checkpoint` state; returns (first epoch to run, steps done)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        stored = History.from_dict(state["history"])
    except Exception as err:
        raise ValueError(
            f"the checkpoint {path} could not be read ({type(err).__name__}: {err}); "
            "delete it to start the run again"
        ) from err
    if state.get("format") != CHECKPOINT_FORMAT or _comparable(stored.settings) != _comparable(
        history.settings
    ):
        raise ValueError(
            f"the checkpoint {path} was written by a run with other settings "
            f"({_comparable(stored.settings)}, now {_comparable(history.settings)}); "
            "delete it, or give this run its own checkpoint file"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"the checkpoint {path} holds another model's weights: {err}") from err
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    settings = history.settings
    history.__dict__.update(stored.__dict__)
    history.settings = settings
    return int(state["epoch"]) + 1, int(state["step"])


@torch.no_grad()
def evaluate_elbo(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Average one-sample ELBO, reconstruction and KL over ``x (N, ...)``, in nats per example."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    for xb in x.split(batch_size):
        out = model(xb.to(device), beta=1.0, generator=generator)
        sums["elbo"] += out.elbo.sum().item()
        sums["reconstruction"] += out.reconstruction.sum().item()
        sums["kl"] += out.kl.sum().item()
    model.train(was_training)
    return {k: v / x.shape[0] for k, v in sums.items()}


def fit(
    model: torch.nn.Module,
    train_x: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_x: torch.Tensor | None = None,
    beta: float = 1.0,
    binarize: str | None = None,
    kl_warmup_epochs: float = 0.0,
    free_bits: float = 0.0,
    lr_schedule: str | None = None,
    progress: bool = True,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_seconds: float = 300.0,
) -> History:
    """Train ``model`` with Adam on minibatches of ``train_x``, maximising the beta-ELBO.

    Each step draws one z per example (reparameterized), so the loss is
    ``-(reconstruction - beta * kl).mean()`` over the batch. Works on whatever device the model is
    on; the data is moved there once.

    Two remedies for posterior collapse change the KL term of the *loss* only (the history
    always records the true ELBO):

    * KL warm-up (Bowman et al., 2016; Sonderby et al., 2016): the KL weight grows linearly
      from 0 to ``beta`` over the first ``kl_warmup_epochs`` epochs (updated every step).
    * Free bits (Kingma et al., 2016): each latent dimension's KL, averaged over the minibatch,
      is counted as at least ``free_bits`` nats, so the optimiser gains nothing by pushing a
      dimension's rate below that floor: ``sum_d max(free_bits, mean_batch KL_d)``.

    Args:
        model: a :class:`vae_lib.VAE` or :class:`vae_lib.ConvVAE` (anything whose
            ``forward(x, beta=..., generator=...)`` returns ``elbo``, ``reconstruction``, ``kl``).
        train_x: ``(N, *input_shape)`` training data in memory.
        epochs: passes over the data (>= 1).
        batch_size: examples per step.
        lr: Adam learning rate.
        val_x: optional validation data, evaluated after every epoch.
        beta: weight of the KL term (1 gives the ELBO).
        binarize: ``None``, ``"dynamic"`` (a fresh Bernoulli draw of every batch; validation
            data is then drawn once, with the seed) or ``"threshold"``.
        kl_warmup_epochs: epochs over which the KL weight ramps from 0 to ``beta`` (0: none).
        free_bits: KL floor per latent dimension, in nats (0: none). Needs outputs with
            ``mu`` and ``logvar`` (a VAE).
        lr_schedule: ``None`` (constant ``lr``) or ``"cosine"`` (from ``lr`` down to 0 at the
            last step, following half a cosine; usually a better end point for a fixed budget).
        progress: show a ``tqdm`` progress bar.
        seed: seeds the data order, the binarization draws and the reparameterization noise.
        checkpoint: optional file for a resumable run. After an epoch, once at least
            ``checkpoint_seconds`` have passed since the last save (and after the last epoch),
            the model, the optimizer, the schedule, the random generator and the history are
            written there (atomically). If the file exists when ``fit`` starts, training
            continues after its last epoch, with the same result on the same machine as an
            uninterrupted run; a file from a run with other settings is refused.
        checkpoint_seconds: least wall time between two checkpoint saves.

    Returns:
        :class:`History` of the run (of the whole run, when resumed).

    Raises:
        NonFiniteLossError: if the loss becomes NaN or infinite (names the epoch and batch of
            the first bad step; the check runs every 64 steps and at each epoch's end, so the
            host never waits for the device inside a step: see :class:`NonFiniteWatch`).
        ValueError: on bad arguments, or ``train_x`` outside [0, 1] with a binarization or a
            Bernoulli likelihood (checked once, before the first step).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not isinstance(train_x, torch.Tensor) or train_x.dim() < 2 or train_x.shape[0] < 1:
        raise ValueError("train_x must be a tensor of shape (N, ...) with N >= 1")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not kl_warmup_epochs >= 0:
        raise ValueError(f"kl_warmup_epochs must be >= 0, got {kl_warmup_epochs}")
    if not free_bits >= 0:
        raise ValueError(f"free_bits must be >= 0, got {free_bits}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if binarize not in BINARIZATIONS or binarize == "static":
        raise ValueError(
            f"binarize must be None, 'dynamic' or 'threshold', got {binarize!r} "
            "(a static binarization is done once by load_mnist)"
        )
    device = next(model.parameters()).device
    train_x = train_x.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if val_x is not None:
        val_x = val_x.to(device)
        val_x = binarize_images(val_x, "static" if binarize == "dynamic" else binarize, generator)
    optimizer = make_adam(model.parameters(), lr)
    n_batches = math.ceil(train_x.shape[0] / batch_size)
    total_steps = epochs * n_batches
    scheduler = None
    if lr_schedule == "cosine":
        scheduler = cosine_schedule(optimizer, total_steps)
    history = History(
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "beta": beta,
            "binarize": binarize,
            "kl_warmup_epochs": kl_warmup_epochs,
            "free_bits": free_bits,
            "lr_schedule": lr_schedule,
            "seed": seed,
            "n_train": int(train_x.shape[0]),
            "device": str(device),
        }
    )
    # The data's values are checked once here, so the steps can skip their per-batch checks
    # (each one a host synchronisation): a batch of train_x, or a binarization of it, stays
    # in [0, 1].
    checked = binarize is not None or getattr(model, "likelihood", None) == "bernoulli"
    if checked:
        check_unit_interval("train_x", train_x, "for binarization or a Bernoulli likelihood")
    watch = NonFiniteWatch(
        device, hint=f"try a smaller learning rate (lr={lr}), a smaller beta, or check the data"
    )
    first_epoch, step = 1, 0
    if checkpoint is not None:
        if not checkpoint_seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
        checkpoint = Path(checkpoint)
        if checkpoint.exists():
            first_epoch, step = _resume(checkpoint, model, optimizer, scheduler, generator, history)
    last_save = time.monotonic()
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="training",
        unit="batch",
        disable=not progress,
        mininterval=PROGRESS_REFRESH_SECONDS,
    )
    model.train()
    try:
        for epoch in range(first_epoch, epochs + 1):
            start = time.perf_counter()
            sums = torch.zeros(3, device=device)
            batches = minibatches(
                train_x, batch_size, shuffle=True, binarize=binarize, generator=generator
            )
            with skip_value_checks() if checked else nullcontext():
                for batch_index, xb in enumerate(batches, start=1):
                    weight = beta
                    if kl_warmup_epochs > 0:
                        weight = beta * min(1.0, step / (kl_warmup_epochs * n_batches))
                    out = model(xb, beta=weight, generator=generator)
                    if free_bits > 0:
                        kl_term = weight * _free_bits_kl(out, free_bits)
                        loss = -(out.reconstruction.mean() - kl_term)
                    else:
                        loss = -out.elbo.mean()
                    watch.record(loss, epoch, batch_index, n_batches)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    step += 1
                    with torch.no_grad():
                        rec, kl = out.reconstruction.sum(), out.kl.sum()
                        sums += torch.stack([rec - kl, rec, kl])
                    bar.update(1)
            watch.check()
            seconds = time.perf_counter() - start
            train_elbo, train_rec, train_kl = (sums / train_x.shape[0]).tolist()
            history.epoch.append(epoch)
            history.train_elbo.append(train_elbo)
            history.train_reconstruction.append(train_rec)
            history.train_kl.append(train_kl)
            history.seconds.append(seconds)
            postfix = {"train ELBO": f"{train_elbo:.2f}"}
            if val_x is not None:
                val = evaluate_elbo(model, val_x, generator=generator)
                history.val_elbo.append(val["elbo"])
                history.val_reconstruction.append(val["reconstruction"])
                history.val_kl.append(val["kl"])
                postfix["val ELBO"] = f"{val['elbo']:.2f}"
            bar.set_postfix(postfix)
            due = time.monotonic() - last_save >= checkpoint_seconds or epoch == epochs
            if checkpoint is not None and due:
                _save_checkpoint(
                    checkpoint, model, optimizer, scheduler, generator, history, epoch, step
                )
                last_save = time.monotonic()
            model.train()
    finally:
        bar.close()
    model.eval()
    return history
