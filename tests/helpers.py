"""Small helpers shared by the test files (imported as ``from helpers import ...``)."""

from __future__ import annotations

import torch


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
