"""The book's model zoo: every trained model a chapter loads, its recipe and its checkpoint.

Each chapter declares its models in a file of its own beside this one (``ch01_ring.py`` ...
``ch08_words.py``): a :class:`ZooEntry` names a model class and its frozen configuration, the
*recipe* that trains it with :func:`vae_lib.fit` (the settings, the data splits, the seed), the
data it is trained on, the metrics measured on it (:mod:`vae_lib.zoo.metrics`) and the entries
it depends on. This module, the zoo's core, knows none of the model families.

The trained weights ship with the package as ``vae_lib/weights/<name>.pt``, described in
``vae_lib/weights/manifest.json``: the file's sha256, size and parameter count, the config and
recipe it was trained with, the training history, time and hardware, the sha256 of the entries
it depends on, and a *quick metric* that anyone can recompute in a second.

* :func:`load` returns the shipped model after checking all of that: a file whose checksum,
  config or recipe does not match the code is never used, nor a model whose dependency now
  loads other weights than it was trained on.
* ``load(name, retrain=True)``, or ``VAE_LIB_RETRAIN=name`` (``all``, or names separated by
  commas) in the environment, trains the entry with its recipe instead, into the user's cache
  (:func:`vae_lib.paths.cache_dir`), never into the package; the run is resumable, concurrent
  retrains of one entry wait for each other, and a cache that cannot be written costs a warning,
  never the trained model.
* ``python benchmarks/train_zoo.py NAME`` (or ``--all``) retrains an entry and writes its
  checkpoint and manifest entry: how the shipped files were made.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import platform
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from .. import arguments
from ..device import cpu_name, resolve_device
from ..loop import History
from ..paths import cache_dir
from ..training import fit
from . import metrics
from .entry import ZooEntry, plain
from .metrics import METRICS, NLL_PROTOCOL, STORED_AS, nll_metric, test_nll

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_PATH = WEIGHTS_DIR / "manifest.json"
MANIFEST_FORMAT = 1
RETRAIN_ENV_VAR = "VAE_LIB_RETRAIN"
QUICK_METRIC_TOLERANCE = 0.01  # nats: float rounding across thread counts is far below this
#: The chapters' declarations (modules of this package), in the book's order. A chapter with
#: models of its own adds its file here.
CHAPTER_FILES = (
    "ch01_ring",
    "ch02_estimators",
    "ch05_training",
    "ch06_comparison",
    "ch07_conditional",
    "ch08_words",
    "ch09_approximations",
)
CHAPTERS = tuple(importlib.import_module(f".{name}", __name__) for name in CHAPTER_FILES)


class ZooError(RuntimeError):
    """A shipped checkpoint is missing, corrupt, or does not match the code's entry."""


def _collect() -> Mapping[str, ZooEntry]:
    entries: dict[str, ZooEntry] = {}
    for chapter in CHAPTERS:
        for e in chapter.ENTRIES:
            if e.name in entries:
                raise ValueError(f"two zoo entries are called {e.name!r}")
            entries[e.name] = e
    for e in entries.values():
        unknown = [n for n in e.needs.values() if n not in entries]
        if unknown or e.quick not in METRICS or any(k not in METRICS for k in e.measured):
            raise ValueError(f"{e.name!r} names an unknown entry or metric")
    return MappingProxyType(entries)


#: Every model of the zoo, by name.
ENTRIES: Mapping[str, ZooEntry] = _collect()


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name`` (``ValueError`` listing the names otherwise)."""
    if not isinstance(name, str) or name not in ENTRIES:
        raise ValueError(f"no zoo model is called {name!r}; the zoo has {sorted(ENTRIES)}")
    return ENTRIES[name]


def group(name: str) -> list[ZooEntry]:
    """The entries of a group, in the order they are declared: ``"beta_sweep"`` (chapter 5's
    VAEs, one per beta, and the free-bits run), ``"words_remedies"`` (chapter 8's VAEs)."""
    members = [e for e in ENTRIES.values() if e.group == name]
    if not members:
        groups = sorted({e.group for e in ENTRIES.values() if e.group})
        raise ValueError(f"no zoo group is called {name!r}; the groups are {groups}")
    return members


@dataclass
class ZooRecord:
    """What the manifest says about a trained model.

    Attributes:
        name: the entry's name.
        history: the training run's :class:`vae_lib.History`, every epoch.
        metrics: measured numbers, each ``{"value": ..., "protocol": ...}``.
        training: wall time in seconds, hardware, thread count, torch and Python versions, date.
        parameters: number of trained parameters.
        sha256: checksum of the weights file.
        source: ``"shipped"`` (package data) or ``"retrained"`` (the user's cache).
        needs: the sha256 of each entry it depends on, by role, as it was trained.
    """

    name: str
    history: History
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parameters: int = 0
    sha256: str = ""
    source: str = "shipped"
    needs: dict[str, Any] = field(default_factory=dict)


# -- the manifest and the weights files ---------------------------------------------------------
def read_manifest(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest as a dict (``{"format": 1, "models": {}}`` if the file does not exist);
    :class:`ZooError` if it cannot be read."""
    path = Path(path) if path is not None else MANIFEST_PATH
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "models": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ZooError(f"the manifest {path} cannot be read ({type(err).__name__}: {err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ZooError(f"{path} has format {found!r}; expected {MANIFEST_FORMAT}")
    if not isinstance(manifest.get("models"), dict):
        raise ZooError(f"{path} has no table of models")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file unique to this call (process, thread and a random
    part), renamed into place: readers never see a partial file, concurrent writers never
    collide, and the temporary file is removed if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(
        f"{path.name}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.tmp"
    )
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _stored(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` as stored: in ``dtype`` (an entry's :attr:`ZooEntry.storage`), or float32 where
    ``dtype`` cannot hold its values (beyond float16's range)."""
    if not t.is_floating_point():
        return t.contiguous()
    stored = t.detach().to(dtype)
    if not bool(torch.isfinite(stored).all()) and bool(torch.isfinite(t).all()):
        return t.detach().to(torch.float32).contiguous()
    return stored.contiguous()


def _save_weights(model: nn.Module, path: Path, storage: str = "float32") -> None:
    """The model's state at ``path`` (atomically), floating-point tensors in ``storage``."""
    import io

    dtype = getattr(torch, storage)
    state = {k: _stored(v, dtype) for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_atomically(path, buffer.getvalue())


def _load_weights(path: Path, expected_sha256: str, model: nn.Module) -> None:
    """Check ``path``'s sha256, then load it into ``model`` (``weights_only=True``, strict)."""
    if not path.is_file():
        raise ZooError(f"the checkpoint {path} is missing")
    digest = _sha256(path)
    if digest != expected_sha256:
        raise ZooError(
            f"the checkpoint {path} has sha256 {digest[:12]}..., but the manifest says "
            f"{str(expected_sha256)[:12]}...: the file is corrupt or was replaced"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)  # float16 copied into float32 parameters
    except RuntimeError as err:
        raise ZooError(f"the checkpoint {path} does not fit the model: {err}") from err


def _info_of(e: ZooEntry, manifest: Mapping[str, Any], where: Path) -> Mapping[str, Any]:
    """``e``'s manifest entry, checked: present, complete, and trained with ``e``'s recipe."""
    info = manifest["models"].get(e.name)
    if info is None:
        raise ZooError(
            f"{where} has no checkpoint for {e.name!r}: train it with "
            f"python benchmarks/train_zoo.py {e.name}, or load({e.name!r}, retrain=True)"
        )
    missing = [k for k in ("file", "sha256", "fingerprint", "history") if k not in info]
    if missing:
        raise ZooError(f"the manifest entry of {e.name!r} in {where} lacks {missing}")
    if info["fingerprint"] != e.fingerprint():
        stored = {k: info.get(k) for k in ("model", "config", "recipe")}
        now = {"model": e.model, "config": plain(e.config), "recipe": plain(e.recipe)}
        raise ZooError(
            f"the checkpoint of {e.name!r} in {where} was trained with {stored}, but the code "
            f"now says {now}: retrain it (python benchmarks/train_zoo.py {e.name}, or "
            f"load({e.name!r}, retrain=True))"
        )
    return info


def _record(name: str, info: Mapping[str, Any], source: str) -> ZooRecord:
    return ZooRecord(
        name=name,
        history=History.from_dict(info["history"]),
        metrics=dict(info.get("metrics", {})),
        training=dict(info.get("training", {})),
        parameters=int(info.get("parameters", 0)),
        sha256=str(info.get("sha256", "")),
        source=source,
        needs=dict(info.get("needs", {})),
    )


# -- which entries to retrain --------------------------------------------------------------------
def retrain_requested() -> frozenset[str]:
    """The entries ``$VAE_LIB_RETRAIN`` names (``all``: every entry); a name that is no entry
    is a ``ValueError`` that lists the valid ones."""
    text = os.environ.get(RETRAIN_ENV_VAR, "")
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in names:
        return frozenset(ENTRIES)
    unknown = sorted(names - set(ENTRIES))
    if unknown:
        raise ValueError(
            f"{RETRAIN_ENV_VAR}={text!r} names {unknown}, which are not zoo entries; give "
            f"'all' or entry names separated by commas, from {sorted(ENTRIES)}"
        )
    return frozenset(names)


def _retrain_argument(name: str, retrain: object) -> bool:
    if retrain is None:
        return name in retrain_requested()
    if not isinstance(retrain, bool):
        raise ValueError(f"retrain must be True, False or None, got {retrain!r}")
    return retrain


# -- loading ---------------------------------------------------------------------------------------
def load(
    name: str,
    device: torch.device | str | None = None,
    *,
    retrain: bool | None = None,
    progress: bool = True,
) -> tuple[nn.Module, ZooRecord]:
    """A trained model of the zoo, in eval mode, and its :class:`ZooRecord`.

    Args:
        name: a key of :data:`ENTRIES`.
        device: where to put the model (default :func:`vae_lib.default_device`).
        retrain: ``True`` trains it with its recipe instead of loading the shipped weights
            (into the user's cache, resumable; a finished retrain is reused); ``None`` (the
            default): whether ``$VAE_LIB_RETRAIN`` names it (or says ``all``).
        progress: show a progress bar while retraining.

    Raises:
        ZooError: the checkpoint is missing, corrupt, was trained with another config or
            recipe than the code's entry, or was trained on another checkpoint of an entry it
            depends on than the one that loads now (the message says what to retrain).
        ValueError: an unknown name, a ``retrain`` that is not a bool, or a
            ``$VAE_LIB_RETRAIN`` that names no entry.
    """
    e = entry(name)
    device = resolve_device(device)
    progress = arguments.boolean("progress", progress)
    if _retrain_argument(name, retrain):
        model, record = _retrained(e, progress, device)
    else:
        info = _info_of(e, read_manifest(), MANIFEST_PATH)
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten
            model = e.build()
        _load_weights(WEIGHTS_DIR / info["file"], info["sha256"], model)
        record = _record(name, info, "shipped")
        _check_needs(e, record)
    model.to(device).eval()
    return model, record


def _check_needs(e: ZooEntry, record: ZooRecord) -> None:
    """Refuse a model whose dependencies now load other weights than it was trained on."""
    for role, dependency in e.needs.items():
        trained_on = record.needs.get(role, {}).get("sha256")
        _, now = load(dependency, "cpu", progress=False)
        if trained_on != now.sha256:
            raise ZooError(
                f"{e.name!r} ({record.source}) was trained on the {role} of {dependency!r} with "
                f"sha256 {str(trained_on)[:12]}..., but {dependency!r} now loads "
                f"{now.source} weights with sha256 {now.sha256[:12]}...: retrain both "
                f"({RETRAIN_ENV_VAR}={dependency},{e.name}), or load the shipped {dependency!r}"
            )


def _loaded_needs(e: ZooEntry) -> dict[str, tuple[nn.Module, ZooRecord]]:
    return {role: load(name, "cpu", progress=False) for role, name in e.needs.items()}


# -- metrics ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _on_cpu_in_eval(model: nn.Module) -> Iterator[nn.Module]:
    device = next(model.parameters()).device
    was_training = model.training
    model.cpu().eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.to(device)
        model.train(was_training)


def quick_metric(name: str, model: nn.Module) -> float:
    """The quick metric of the entry ``name`` (:attr:`ZooEntry.quick`) for ``model``,
    computed on the CPU in seconds."""
    e = entry(name)
    if not isinstance(model, e.model_class):
        raise ValueError(f"{name!r} is a {e.model}, got a {type(model).__name__}")
    needs = {role: m for role, (m, _) in _loaded_needs(e).items()}
    with _on_cpu_in_eval(model):
        return METRICS[e.quick].compute(model, needs, False)


def measure(name: str, model: nn.Module, *, progress: bool = True) -> dict[str, dict[str, Any]]:
    """The slow metrics of entry ``name`` (:attr:`ZooEntry.measured`) for ``model``, each with
    its protocol, by the key the manifest stores it under. Minutes on a CPU."""
    e = entry(name)
    needs = {role: m for role, (m, _) in _loaded_needs(e).items()}
    results = {}
    with _on_cpu_in_eval(model):
        for key in e.measured:
            uses = {n: load(n, "cpu", progress=False)[0] for n in METRICS[key].uses}
            value = METRICS[key].compute(model, {**needs, **uses}, progress)
            results[STORED_AS.get(key, key)] = {**value, "protocol": METRICS[key].protocol}
    return results


# -- training --------------------------------------------------------------------------------------
def training_data(e: ZooEntry, needs: Mapping[str, nn.Module]) -> tuple[Any, Any]:
    """``(train, val)`` for :func:`vae_lib.fit`, as the entry's dataset makes them."""
    return e.dataset(e, needs)


def _hardware() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def train_entry(
    e: ZooEntry,
    weights_path: Path | None,
    *,
    checkpoint: Path | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``e`` with its recipe (:func:`vae_lib.fit`) and save its float32 weights to
    ``weights_path`` (``None``: not saved).

    ``checkpoint`` makes the run resumable. Returns the trained model (eval mode) and its
    manifest entry (with the quick metric and the sha256 of the entries it was trained on).
    """
    loaded = _loaded_needs(e)
    needs = {role: m for role, (m, _) in loaded.items()}
    train, val = training_data(e, needs)
    seed = int(e.recipe["seed"])
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
        torch.manual_seed(seed)  # the initial weights
        model = e.build()
    model.to(device if device is not None else "cpu")
    started = time.strftime("%Y-%m-%d")
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator
        torch.manual_seed(seed)
        history = fit(
            model,
            train,
            val=val,
            epochs=int(e.recipe["epochs"]),
            seed=seed,
            progress=progress,
            checkpoint=checkpoint,
            **e.fit_options(),
        )
    model.cpu().eval()
    info: dict[str, Any] = {}
    if weights_path is not None:
        _save_weights(model, weights_path, e.storage)
        info = {
            "file": weights_path.name,
            "sha256": _sha256(weights_path),
            "bytes": weights_path.stat().st_size,
        }
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # only needed to resume an interrupted run
    with _on_cpu_in_eval(model):
        value = METRICS[e.quick].compute(model, needs, False)
    if weights_path is not None and e.storage != "float32":
        # The file holds the weights in e.storage: the model returned and its quick metric are
        # the file's, with the float32 value and the change beside them (as
        # benchmarks/store_half.py records them for an entry halved after training).
        stored = e.build()
        _load_weights(weights_path, info["sha256"], stored)
        stored.eval()
        with _on_cpu_in_eval(stored):
            stored_value = METRICS[e.quick].compute(stored, needs, False)
        info["storage"] = {
            "dtype": e.storage,
            "quick_float32": value,
            "quick_change": stored_value - value,
        }
        model, value = stored, stored_value
    info.update(
        {
            "parameters": sum(p.numel() for p in model.parameters()),
            "description": e.description,
            "model": e.model,
            "config": plain(e.config),
            "recipe": plain(e.recipe),
            "fingerprint": e.fingerprint(),
            "metrics": {"quick": {"value": value, "protocol": METRICS[e.quick].protocol}},
            "needs": {
                role: {"model": e.needs[role], "sha256": record.sha256}
                for role, (_, record) in loaded.items()
            },
            "training": {
                "seconds": round(history.total_seconds, 1),
                "epochs": len(history.epoch),
                "date": started,
                **_hardware(),
            },
            "history": history.to_dict(),
        }
    )
    return model, info


def write_manifest_entry(name: str, info: Mapping[str, Any], path: Path = MANIFEST_PATH) -> None:
    """Add or replace ``name``'s entry in the manifest at ``path`` (keeping measured metrics
    of other protocols only if the weights did not change); a manifest that cannot be read is
    started afresh."""
    try:
        manifest = read_manifest(path)
    except ZooError:
        manifest = {"format": MANIFEST_FORMAT, "models": {}}
    old = manifest["models"].get(name, {})
    info = dict(info)
    if old.get("sha256") == info["sha256"]:
        info["metrics"] = {**old.get("metrics", {}), **info["metrics"]}
    manifest["models"][name] = info
    manifest["models"] = dict(sorted(manifest["models"].items()))
    _write_atomically(path, (json.dumps(manifest, indent=1) + "\n").encode())


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _exclusive(key: str, lock_file: Path | None) -> Iterator[None]:
    """One retrain of an entry at a time: across threads, and across processes where the cache
    folder can be written and the platform has ``fcntl``."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        handle = None
        if lock_file is not None:
            with contextlib.suppress(OSError, ImportError):
                import fcntl

                handle = open(lock_file, "a")  # noqa: SIM115 - held for the block
                fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if handle is not None:
                handle.close()


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def _retrained(e: ZooEntry, progress: bool, device: torch.device) -> tuple[nn.Module, ZooRecord]:
    """Train ``e`` on ``device`` into the user's cache, or reuse a finished retrain there."""
    folder = cache_dir() / "zoo"
    stem = f"{e.name}-{e.fingerprint()[:16]}"
    weights, manifest = folder / f"{stem}.pt", folder / f"{stem}.json"
    writable = _writable(folder)
    with _exclusive(stem, folder / f"{stem}.lock" if writable else None):
        if weights.is_file() and manifest.is_file():
            try:
                info = _info_of(e, read_manifest(manifest), manifest)
                with torch.random.fork_rng(devices=[]):
                    model = e.build()
                _load_weights(weights, info["sha256"], model)
                record = _record(e.name, info, "retrained")
                _check_needs(e, record)
                return model, record
            except (ZooError, KeyError, ValueError, OSError) as err:
                warnings.warn(
                    f"the retrained {e.name!r} in {folder} could not be used ({err}); "
                    "training again",
                    RuntimeWarning,
                    stacklevel=3,
                )
        where = folder if writable else "memory (the cache cannot be written)"
        warnings.warn(
            f"retraining {e.name!r} with its recipe ({e.recipe['epochs']} epochs) into {where}, "
            "as asked; the shipped weights are not used",
            RuntimeWarning,
            stacklevel=3,
        )
        checkpoint = folder / f"{stem}.checkpoint.pt" if writable else None
        try:
            model, info = train_entry(
                e, None, checkpoint=checkpoint, progress=progress, device=device
            )
        except ValueError as err:
            if checkpoint is None or "checkpoint" not in str(err):
                raise
            warnings.warn(
                f"the unfinished retrain of {e.name!r} in {checkpoint} could not be resumed "
                f"({err}); starting it again",
                RuntimeWarning,
                stacklevel=3,
            )
            checkpoint.unlink(missing_ok=True)
            model, info = train_entry(
                e, None, checkpoint=checkpoint, progress=progress, device=device
            )
        try:
            _save_weights(model, weights, e.storage)
            info.update(file=weights.name, sha256=_sha256(weights), bytes=weights.stat().st_size)
            write_manifest_entry(e.name, info, manifest)
        except OSError as err:
            warnings.warn(
                f"{e.name!r} was retrained but could not be cached in {folder} "
                f"({type(err).__name__}: {err}); the trained model is returned, but it will be "
                f"trained again next time: point $VAE_LIB_CACHE at a writable folder",
                RuntimeWarning,
                stacklevel=3,
            )
            info.setdefault("sha256", "")
        return model, _record(e.name, info, "retrained")


# -- the manifest as a table -----------------------------------------------------------------------
def _measured(values: Mapping[str, Any]) -> str:
    """The slow metrics of a manifest entry, short (the protocols are in the manifest)."""
    parts = []
    for key, m in values.items():
        value = m.get("value")
        if key == "quick" or value is None or not math.isfinite(value):
            continue
        if key.startswith("nll_k"):
            parts.append(f"NLL {value:.2f} (k={m['k']}, first {m['n']:,} test images)")
        elif key == "nll":
            parts.append(f"NLL {value:.2f} (k=5000, all test images)")
        elif key == "nll_ais":
            parts.append(f"NLL {value:.2f} (AIS)")
        elif key == "frechet":
            parts.append(f"Frechet distance {value:.2f}")
        elif key == "test_accuracy":
            parts.append(f"test accuracy {value:.2%}")
        elif key == "words":
            text = f"NLL {value:.2f} nats/word (k={m['k']})"
            if "kl" in m:
                text += f", KL {m['kl']:.2f}, {m['active_units']} active units"
            parts.append(text)
        elif key == "gaps":
            g = m["gaps"]
            parts.append(
                f"gaps: approximation {g['approximation']['mean']:.2f}, amortization "
                f"{g['amortization']['mean']:.2f} ({m['n']:,} test images)"
            )
        elif key == "completion":
            counts = sorted(k for k in m if k.isdigit())
            values_text = " / ".join(f"{m[k]['value']:.1f}" for k in counts)
            parts.append(f"completion NLL {values_text} ({' / '.join(counts)} quadrants)")
    return "; ".join(parts) or "not measured"


def table(manifest: Mapping[str, Any] | None = None) -> str:
    """The manifest as a Markdown table: model, parameters, MB, training time, metrics."""
    manifest = manifest if manifest is not None else read_manifest()
    rows = [
        "| model | parameters | MB | epochs | training time | quick metric | measured |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, info in manifest["models"].items():
        t = info["training"]
        rows.append(
            f"| {name} | {info['parameters']:,} | {info['bytes'] / 1e6:.1f} | {t['epochs']} | "
            f"{t['seconds'] / 60:.1f} min ({t['threads']} thread{'s' * (t['threads'] != 1)}, "
            f"{t['cpu']}) | "
            f"{info['metrics']['quick']['value']:.2f} | {_measured(info['metrics'])} |"
        )
    total = sum(info["bytes"] for info in manifest["models"].values())
    rows.append(f"| **all {len(manifest['models'])}** | | **{total / 1e6:.1f}** | | | | |")
    return "\n".join(rows)


__all__ = [
    "CHAPTERS",
    "ENTRIES",
    "MANIFEST_PATH",
    "METRICS",
    "NLL_PROTOCOL",
    "QUICK_METRIC_TOLERANCE",
    "RETRAIN_ENV_VAR",
    "WEIGHTS_DIR",
    "ZooEntry",
    "ZooError",
    "ZooRecord",
    "entry",
    "group",
    "load",
    "measure",
    "metrics",
    "nll_metric",
    "quick_metric",
    "read_manifest",
    "retrain_requested",
    "table",
    "test_nll",
    "train_entry",
    "training_data",
    "write_manifest_entry",
]
