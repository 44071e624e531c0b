"""Small helpers shared by the test files (imported as ``from helpers import ...``)."""

from __future__ import annotations

import pytest
import torch

import vae_lib as V


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b) -> bool:
    """Whether two models (or state dicts from :func:`weights`) hold identical tensors."""
    wa = a if isinstance(a, dict) else weights(a)
    wb = b if isinstance(b, dict) else weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def without_time(history) -> dict:
    """A training history (:class:`vae_lib.History`) as a dict, without the wall times."""
    d = history.to_dict()
    d.pop("seconds")
    return d


def load_from_zoo(name: str, model_class: type):
    """The zoo's trained model ``name``, loaded on the CPU, checked against its entry: of
    ``model_class``, in eval mode, with the entry's config, and its :class:`vae_lib.History`
    of the recipe's epochs. Returns ``(entry, model, history)``."""
    from vae_lib import zoo

    e = zoo.entry(name)
    model, record = zoo.load(name, "cpu", progress=False)
    assert isinstance(model, model_class) and not model.training
    assert model.config == e.config_object
    history = record.history
    assert isinstance(history, V.History)
    assert history.epoch == list(range(1, e.recipe["epochs"] + 1))
    return e, model, history


def assert_refuses_bad_images(model) -> None:
    """The checks of an image VAE or autoencoder of ``(1, 6, 6)`` images with a code of 3:
    wrong shapes and dtypes of x and z, and pixels outside [0, 1] for its Bernoulli
    likelihood, are refused with messages that say so."""
    with pytest.raises(ValueError, match="expected"):
        model.encode(torch.zeros(5, 1, 7, 7))
    with pytest.raises(ValueError, match="floating-point"):
        model.encode(torch.zeros(5, 1, 6, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="latent"):
        model.decode(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(torch.full((2, 1, 6, 6), 2.0))


#: ``fit`` keywords every family refuses, with what the message must name: ``(kwargs, match)``.
BAD_COMMON_OPTIONS = [
    ({"epochs": 0}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"lr_schedule": "linear"}, "lr_schedule"),
]


class Interrupt(Exception):
    """A run stopped part-way (Ctrl-C, the session ending)."""


def interrupt_after(model, steps: int | None):
    """``model`` whose training step raises :class:`Interrupt` after ``steps`` steps (``None``:
    never)."""
    if steps is not None:
        step, calls = model.training_step, []

        def interrupted(batch, run):
            calls.append(1)
            if len(calls) > steps:
                raise Interrupt
            return step(batch, run)

        model.training_step = interrupted
    return model


def resume_after_interrupt(
    make_model, data, path, *, interrupt_at: int, epochs_done: int, **options
):
    """Train ``make_model()`` (under ``torch.manual_seed(0)``) on ``data`` with ``vae_lib.fit``
    three times: whole, with a checkpoint at ``path`` and stopped after ``interrupt_at`` steps
    (after ``epochs_done`` saved epochs), then resumed from it. Returns ``(whole model, its
    history, resumed model, its history)``."""

    def run(checkpoint=None, steps=None):
        torch.manual_seed(0)
        model = interrupt_after(make_model(), steps)
        history = V.fit(model, data, checkpoint=checkpoint, checkpoint_seconds=0.0, **options)
        return model, history

    whole, whole_history = run()
    with pytest.raises(Interrupt):
        run(path, interrupt_at)
    assert torch.load(path, weights_only=True)["epoch"] == epochs_done
    return (whole, whole_history, *run(path))
