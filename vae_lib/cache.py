"""Train once, reuse everywhere: trained weights cached on disk, keyed on their configuration.

The key of an entry hashes everything that decides the trained weights (see :func:`fit_or_load`):
the name, the seed, the training settings in ``config``, the model's ``config`` *and its code*
(the source of its classes and its printed structure), and the code of ``train``. Editing a
model class or a training function in a notebook cell and re-running it trains the model again;
re-running it unedited loads the weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import io
import json
import os
import re
import threading
import types
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import arguments, paths
from .device import seeded, set_seed
from .training import History

CACHE_ENV_VAR = "VAE_LIB_CACHE"
#: Version of the key and of the file layout. 3: the key hashes the code of the model's classes,
#: its structure (``repr``), the code of ``train`` and the exact contents of tensors and arrays.
CACHE_FORMAT = 3
MAX_NAME_LENGTH = 100
_TAG = "__vae_lib_type__"  # marks a non-JSON value (tensor, array, device, ...) in a description


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder, as an absolute path: the argument, else ``$VAE_LIB_CACHE``, else
    ``.cache/`` in the repo when the package runs from a source checkout, else the per-user
    cache folder (``platformdirs.user_cache_dir("vae_lib")``, e.g. ``~/.cache/vae_lib``), never
    ``site-packages`` (:mod:`vae_lib.paths`).

    ``~`` is expanded. A relative path (``VAE_LIB_CACHE=models``) is taken relative to the
    current working directory *at the time of the call*; Jupyter runs a notebook in its own
    folder and a script runs wherever it is started, so to share one cache between the book's
    notebooks and your scripts give an absolute path.
    """
    if path is not None:
        return Path(path).expanduser().resolve()
    return paths.resolve_folder(CACHE_ENV_VAR, "cache")


# -- turning configurations into stable, exact key material ---------------------------------------
def _sha256_of_buffer(buffer: Any) -> str:
    return hashlib.sha256(memoryview(buffer).cast("B")).hexdigest()


def _tensor_digest(value: torch.Tensor, where: str) -> dict[str, Any]:
    if value.layout != torch.strided or value.is_quantized or value.is_meta:
        raise ValueError(
            f"{where} is a {value.layout} {'meta ' if value.is_meta else ''}tensor, whose "
            "contents cannot be hashed; pass a dense tensor (tensor.to_dense())"
        )
    flat = value.detach().resolve_conj().resolve_neg().cpu().contiguous().reshape(-1)
    data = flat.view(torch.uint8).numpy()  # the exact bytes, whatever the dtype (bfloat16 too)
    return {
        _TAG: "tensor",
        "dtype": str(value.dtype),
        "shape": list(value.shape),
        "sha256": _sha256_of_buffer(data),
    }


def _array_digest(value: np.ndarray, where: str) -> dict[str, Any]:
    if value.dtype.hasobject:
        raise ValueError(
            f"{where} is a numpy array of Python objects, whose contents cannot be hashed "
            "exactly; use an array of numbers"
        )
    data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    return {
        _TAG: "ndarray",
        "dtype": value.dtype.str,
        "shape": list(value.shape),
        "sha256": _sha256_of_buffer(data),
    }


def _canonical(value: Any, where: str) -> Any:
    """``value`` as plain JSON data that identifies it exactly and is the same in every process.

    Supported: ``None``, ``bool``, ``int``, ``float``, ``str``; lists and tuples (the same thing
    here); dicts with string keys; tensors and numpy arrays (hashed: their exact bytes, dtype and
    shape); numpy scalars (as the Python number they equal: ``np.float64(0.5)`` is ``0.5``);
    ``torch.device``, ``torch.dtype``, ``numpy.dtype``; dataclass instances. Anything else (a set,
    whose order changes between processes, a function, an arbitrary object, whose ``repr`` may
    hold a memory address or hide its contents) raises a ValueError naming ``where``.
    """
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value  # json writes the shortest repr that round-trips: exact
    if kind is list or isinstance(value, tuple):  # torch.Size and named tuples too
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise ValueError(
                    f"{where} has the key {k!r} ({type(k).__name__}); the keys of a cached "
                    "configuration must be strings"
                )
            if k == _TAG:
                raise ValueError(f"{where} uses the reserved key {_TAG!r}")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, torch.Tensor):
        return _tensor_digest(value, where)
    if isinstance(value, np.ndarray):
        return _array_digest(value, where)
    if isinstance(value, np.generic):
        if value.dtype.kind in "biufUS":  # bool, ints, floats, strings: the Python value
            return _canonical(value.item(), where)
        return _array_digest(np.asarray(value), where)
    if isinstance(value, torch.device):
        return {_TAG: "device", "value": str(value)}
    if isinstance(value, torch.dtype):
        return {_TAG: "dtype", "value": str(value)}
    if isinstance(value, np.dtype):
        return {_TAG: "numpy.dtype", "value": value.str}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {
            _TAG: "dataclass",
            "class": kind.__qualname__,
            "fields": _canonical(fields, where),
        }
    hint = "use a sorted list" if isinstance(value, set | frozenset) else "use plain values instead"
    raise ValueError(
        f"{where} is a {kind.__name__} ({_short_repr(value)}), which cannot be part of the cache "
        f"key: it would not be the same in every session; {hint}. The configuration may hold "
        "None, bools, ints, floats, strings, lists, tuples, dicts with string keys, tensors, "
        "numpy arrays and scalars, torch.device, torch.dtype and dataclasses of these"
    )


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- fingerprints of code ------------------------------------------------------------------------
def _code_fingerprint(code: types.CodeType) -> str:
    """The compiled code, without its file name and line numbers (a notebook cell's "file"
    changes with every kernel): bytecode, names used, constants, nested functions."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append(_code_fingerprint(const))
        elif isinstance(const, frozenset):  # its order changes with the hash seed
            consts.append(repr(sorted(repr(c) for c in const)))
        else:
            consts.append(f"{type(const).__name__}:{const!r}")
    parts = [
        code.co_qualname if hasattr(code, "co_qualname") else code.co_name,
        code.co_code.hex(),
        repr(code.co_names),
        repr(code.co_varnames),
        repr(code.co_freevars),
        repr((code.co_argcount, code.co_kwonlyargcount, code.co_flags)),
        *consts,
    ]
    return _digest("\n".join(parts))


def _defaults_fingerprint(func: Any) -> str:
    try:
        return _json(_canonical([func.__defaults__, func.__kwdefaults__], "defaults"))
    except ValueError:
        return repr([type(d).__name__ for d in func.__defaults__ or ()])


def _source_or_code(obj: Any) -> str:
    """What identifies the code of a function or class: its source, else its compiled code."""
    try:
        return inspect.getsource(obj)
    except Exception:  # OSError, TypeError: exec'd code, a notebook cell, `python -c`, C
        pass
    if isinstance(obj, type):
        parts = [obj.__qualname__, repr([b.__qualname__ for b in obj.__bases__])]
        for name, attr in sorted(vars(obj).items()):
            if name in ("__dict__", "__weakref__", "__module__", "__qualname__", "__firstlineno__"):
                continue
            if isinstance(attr, staticmethod | classmethod):
                attr = attr.__func__
            if callable(attr) and not isinstance(attr, type):
                attr = inspect.unwrap(attr)  # a decorated method: the code it wraps
            if isinstance(attr, property):
                accessors = (attr.fget, attr.fset, attr.fdel)
                parts.append(f"{name}:" + ",".join(_source_or_code(f) for f in accessors if f))
            elif hasattr(attr, "__code__"):
                parts.append(
                    f"{name}:{_code_fingerprint(attr.__code__)}:{_defaults_fingerprint(attr)}"
                )
            elif isinstance(attr, type):
                parts.append(f"{name}:{attr.__module__}.{attr.__qualname__}")
            else:
                try:
                    parts.append(f"{name}:{_json(_canonical(attr, name))}")
                except ValueError:
                    parts.append(f"{name}:{type(attr).__qualname__}")
        return "\n".join(parts)
    code = getattr(obj, "__code__", None)
    if code is not None:
        return f"{_code_fingerprint(code)}:{_defaults_fingerprint(obj)}"
    module = getattr(obj, "__module__", None) or ""
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _is_torch_class(cls: type) -> bool:
    module = cls.__module__ or ""
    return module == "builtins" or module.split(".")[0] == "torch"


def _model_code(model: nn.Module) -> str:
    """A hash of the code of every class in ``model`` that is not PyTorch's own (the model's
    class, its base classes and the classes of its submodules), and of ``repr(model)``, which
    shows the layers of an ``nn.Sequential`` (``ReLU()`` or ``Tanh()``) and their sizes."""
    classes: dict[str, type] = {}
    for module in model.modules():
        for cls in type(module).__mro__:
            if not _is_torch_class(cls):
                classes.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    parts = [f"{name}\n{_source_or_code(cls)}" for name, cls in sorted(classes.items())]
    parts.append(repr(model))
    return _digest("\n\0\n".join(parts))


def _train_code(train: Callable[..., Any]) -> str:
    """A hash of the code of ``train`` (a function, a method, a ``functools.partial`` or an
    object with a ``__call__`` method)."""
    if isinstance(train, functools.partial):
        inner = _train_code(train.func)
        args = _canonical([list(train.args), dict(train.keywords)], "train's partial arguments")
        return _digest(f"partial\n{inner}\n{_json(args)}")
    if inspect.ismethod(train):
        return _digest(_source_or_code(train.__func__))
    if inspect.isfunction(train) or inspect.isbuiltin(train):
        return _digest(_source_or_code(train))
    # an object with a __call__ method: its class's code, and that of the functions it holds
    # (a wrapper that counts calls or times them is keyed on the function it wraps)
    classes = [c for c in type(train).__mro__ if not _is_torch_class(c)]
    parts = [_source_or_code(c) for c in classes]
    for attr, value in sorted(getattr(train, "__dict__", {}).items()):
        if (
            inspect.isfunction(value)
            or inspect.ismethod(value)
            or isinstance(value, functools.partial)
        ):
            parts.append(f"{attr}:{_train_code(value)}")
    return _digest("\n\0\n".join(parts))


def _describe(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    # the class's name, not its module path: moving a class between modules keeps its cache
    return {
        "class": type(model).__qualname__,
        "config": _canonical(config, "model.config"),
        "code": _model_code(model),
    }


def _key(description: dict[str, Any]) -> str:
    return _digest(_json(description))[:16]


# -- histories ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays (anywhere in dicts, lists, tuples) turned into
    Python numbers and (nested) lists: ``torch.load(weights_only=True)`` refuses numpy."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _has_numpy(value: Any) -> bool:
    if isinstance(value, np.generic | np.ndarray):
        return True
    if type(value) is dict:
        return any(_has_numpy(v) for v in value.values())
    if type(value) in (list, tuple):
        return any(_has_numpy(v) for v in value)
    return False


def _history_to_payload(history: Any) -> Any:
    if isinstance(history, History):
        return {"__history__": _plain(history.to_dict())}
    return _plain(history)


def _history_from_payload(payload: Any) -> Any:
    if isinstance(payload, dict) and "__history__" in payload:
        return History.from_dict(payload["__history__"])
    return payload


def _storable_history(history: Any) -> Any:
    """The payload form of ``history``, checked to load back with ``weights_only=True``."""
    payload = _history_to_payload(history)
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    except Exception as err:
        raise ValueError(
            f"train() returned a history ({_short_repr(history)}) that cannot be cached: it "
            f"would not load back safely ({type(err).__name__}: {str(err)[:300]}). Return a "
            "vae_lib.History, None, or plain values (numbers, strings, lists, dicts, tensors; "
            "numpy values are converted to Python ones)"
        ) from err
    return payload


# -- the cache ------------------------------------------------------------------------------------
def _check_arguments(name, build, train, config, seed, directory) -> int:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not callable(build):
        raise ValueError(f"build must be a function that makes the model, got {build!r}")
    if not callable(train):
        raise ValueError(f"train must be a function train(model) -> history, got {train!r}")
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"config must be a dict or None, got {type(config).__name__}")
    if directory is not None:
        if not isinstance(directory, str | os.PathLike) or isinstance(os.fspath(directory), bytes):
            raise ValueError(
                f"directory must be a path (a str or pathlib.Path) or None, got {directory!r}"
            )
        if not os.fspath(directory).strip():
            raise ValueError("directory must be a path or None, got an empty string")
    return arguments.seed("seed", seed)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file unique to this call, then rename it into place:
    readers never see a partial file, and concurrent writers (threads or processes) do not
    collide. The temporary file is removed if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(
        f"{path.name}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:12]}.tmp"
    )
    created = False
    try:
        with open(tmp, "xb") as f:
            created = True
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


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

    The cache file is ``<cache>/<name>-<key>.pt``. The key hashes ``name``; ``seed``; the
    ``config`` you pass (put the training settings there: epochs, learning rate, beta, ...;
    tensors and arrays in it are hashed by their exact contents); the model's class name and
    ``model.config``; the *code* of the model: the source of its classes (the model's, their
    bases' and its submodules', PyTorch's own excepted) and ``repr(model)``, which lists the
    layers of an ``nn.Sequential``; and the code of ``train`` (its source, or its compiled code
    where the source cannot be found). Change any of them, an activation or a line of ``train``
    included, and the model is trained anew. Not in the key: code that ``train`` *calls*
    (:func:`vae_lib.fit` included), values it reads from enclosing variables or object
    attributes (put those in ``config``), the data, and the library versions.

    A config value that would not give the same key in every session (a set, a function, an
    arbitrary object) raises a ValueError naming it, before anything is built.

    A file that cannot be read, whose checksum does not match, or whose stored configuration
    differs is never used: a warning is issued and the model is retrained and saved again.
    If the cache folder cannot be written (read-only, under a file, a folder in the file's
    place), a ``RuntimeWarning`` says so and the trained model is returned all the same.

    Args:
        name: a short file-friendly name, e.g. ``"mnist_vae"``.
        build: makes the untrained model (called after ``set_seed(seed)``), on its device.
            ``build`` and ``train`` run inside :func:`vae_lib.seeded`, so the caller's random
            state (Python's, NumPy's and PyTorch's) is the same afterwards whether the model
            was trained or loaded.
        train: trains the model in place and returns its history: a :class:`History`, None, or
            plain values (numbers, strings, lists, dicts, tensors). NumPy scalars and arrays in
            it are converted to Python numbers and lists (so a trained and a loaded history are
            equal); anything that could not be loaded back safely raises a ValueError.
        config: everything else that determines the trained weights (training settings).
        seed: seed set before ``build`` and ``train``.
        directory: cache folder; default :func:`cache_dir`.

    Returns:
        ``(model, history)``; the model is in eval mode on the device ``build`` chose.
    """
    seed = _check_arguments(name, build, train, config, seed, directory)
    config_key = _canonical(config or {}, "config")
    train_code = _train_code(train)
    folder = cache_dir(directory)
    with seeded(seed):  # the caller's random state is given back afterwards
        model = build()
        if not isinstance(model, nn.Module):
            raise ValueError(f"build() must return a torch.nn.Module, got {type(model).__name__}")
        description = {
            "format": CACHE_FORMAT,
            "name": name,
            "model": _describe(model),
            "train": train_code,
            "config": config_key,
            "seed": seed,
        }
        key = _key(description)
        path = folder / f"{name}-{key}.pt"
        device = next(iter(model.state_dict().values())).device if model.state_dict() else "cpu"

        if path.is_file():
            try:
                blob = path.read_bytes()
                stored = torch.load(io.BytesIO(blob), map_location=device, weights_only=True)
                digest = hashlib.sha256(stored["payload"]).hexdigest()
                if digest != stored["sha256"]:
                    raise ValueError("checksum mismatch: the file is corrupt")
                payload = torch.load(
                    io.BytesIO(stored["payload"]), map_location=device, weights_only=True
                )
                if _json(payload["description"]) != _json(description):
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
    history_payload = _storable_history(history)
    if _has_numpy(history.to_dict() if isinstance(history, History) else history):
        history = _history_from_payload(history_payload)  # as a later load will return it
    buffer = io.BytesIO()
    torch.save(
        {
            "description": description,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "history": history_payload,
        },
        buffer,
    )
    payload_bytes = buffer.getvalue()
    outer = io.BytesIO()
    torch.save(
        {"payload": payload_bytes, "sha256": hashlib.sha256(payload_bytes).hexdigest()}, outer
    )
    try:
        _write_atomically(path, outer.getvalue())
    except OSError as err:
        warnings.warn(
            f"the model {name!r} was trained but could not be cached: {path} could not be "
            f"written ({type(err).__name__}: {err}). The trained model is returned, but it will "
            f"be trained again next time; point {CACHE_ENV_VAR} (or directory=) at a writable "
            "folder",
            RuntimeWarning,
            stacklevel=2,
        )
    return model, history
