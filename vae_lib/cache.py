"""Train once, reuse everywhere: trained weights cached on disk, keyed on their configuration."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .device import seeded, set_seed
from .training import History

CACHE_ENV_VAR = "VAE_LIB_CACHE"
CACHE_FORMAT = 2
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: the argument, else ``$VAE_LIB_CACHE``, else ``.cache/`` in the repo."""
    if path is not None:
        return Path(path).expanduser().resolve()
    env = os.environ.get(CACHE_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / ".cache"


def _describe(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    # the class's name, not its module path: moving a class between modules keeps its cache
    return {"class": type(model).__qualname__, "config": config}


def _key(description: dict[str, Any]) -> str:
    text = json.dumps(description, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _history_to_payload(history: Any) -> Any:
    if isinstance(history, History):
        return {"__history__": history.to_dict()}
    return history


def _history_from_payload(payload: Any) -> Any:
    if isinstance(payload, dict) and "__history__" in payload:
        return History.from_dict(payload["__history__"])
    return payload


def fit_or_load(
    name: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], Any],
    *,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    directory: str | os.PathLike | None = None,
) -> tuple[nn.Module, Any]:
    """Return a trained model, training it only if no matching cached copy exists.

    The cache file is ``<cache>/<name>-<key>.pt`` where the key hashes ``name``, the model's
    class and ``model.config``, the ``config`` you pass (put the training settings there: epochs,
    learning rate, beta, ...) and ``seed``. Change any of them and the model is trained anew.

    A file that cannot be read, whose checksum does not match, or whose stored configuration
    differs is never used: a warning is issued and the model is retrained and saved again.

    Args:
        name: a short file-friendly name, e.g. ``"mnist_vae"``.
        build: makes the untrained model (called after ``set_seed(seed)``), on its device.
            ``build`` and ``train`` run inside :func:`vae_lib.seeded`, so the caller's random
            state is the same afterwards whether the model was trained or loaded.
        train: trains the model in place and returns its history (a :class:`History`, a dict
            of plain Python values, or None).
        config: everything else that determines the trained weights (training settings).
        seed: seed set before ``build`` and ``train``.
        directory: cache folder; default :func:`cache_dir`.

    Returns:
        ``(model, history)``; the model is in eval mode on the device ``build`` chose.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {name!r}")
    with seeded(seed):  # the caller's random state is given back afterwards
        model = build()
        if not isinstance(model, nn.Module):
            raise ValueError(f"build() must return a torch.nn.Module, got {type(model).__name__}")
        description = {
            "format": CACHE_FORMAT,
            "name": name,
            "model": _describe(model),
            "config": config or {},
            "seed": seed,
        }
        key = _key(description)
        folder = cache_dir(directory)
        path = folder / f"{name}-{key}.pt"
        device = next(iter(model.state_dict().values())).device if model.state_dict() else "cpu"

        if path.exists():
            try:
                blob = path.read_bytes()
                stored = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
                digest = hashlib.sha256(stored["payload"]).hexdigest()
                if digest != stored["sha256"]:
                    raise ValueError("checksum mismatch: the file is corrupt")
                payload = torch.load(
                    io.BytesIO(stored["payload"]), map_location=device, weights_only=True
                )
                if json.dumps(payload["description"], sort_keys=True, default=repr) != json.dumps(
                    description, sort_keys=True, default=repr
                ):
                    raise ValueError("the stored configuration differs from the requested one")
                model.load_state_dict(payload["state_dict"], strict=True)
                model.eval()
                return model, _history_from_payload(payload["history"])
            except Exception as err:  # corrupt, truncated, foreign or mismatched: never use it
                warnings.warn(
                    f"cached model {path} could not be used ({type(err).__name__}: {err}); "
                    "training it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
                set_seed(seed)
                model = build()

        history = train(model)
    model.eval()
    buffer = io.BytesIO()
    torch.save(
        {
            "description": description,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "history": _history_to_payload(history),
        },
        buffer,
    )
    payload_bytes = buffer.getvalue()
    outer = io.BytesIO()
    torch.save(
        {"payload": payload_bytes, "sha256": hashlib.sha256(payload_bytes).hexdigest()}, outer
    )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(outer.getvalue())
    os.replace(tmp, path)
    return model, history
