"""Where vae_lib keeps what it downloads and trains: the MNIST folder and the model cache.

One rule for both (used by :func:`vae_lib.data_root` and :func:`vae_lib.cache_dir`):

1. the environment variable (``VAE_LIB_DATA``, ``VAE_LIB_CACHE``) if it is set and not blank,
   ``~`` expanded, a relative path taken from the current directory at the time of the call;
2. else, when the package runs from a source checkout of the book (its parent folder holds the
   ``pyproject.toml`` of this project and a ``.git`` or ``chapters/`` folder), ``data/`` and
   ``.cache/`` in that checkout, as always;
3. else (a ``pip install`` from a wheel or a git URL, Colab) the per-user folders of
   ``platformdirs``: on Linux ``~/.local/share/vae_lib`` and ``~/.cache/vae_lib`` (or under
   ``$XDG_DATA_HOME`` / ``$XDG_CACHE_HOME``), on macOS ``~/Library/Application Support/vae_lib``
   and ``~/Library/Caches/vae_lib``, on Windows ``%LOCALAPPDATA%\\vae_lib`` and
   ``%LOCALAPPDATA%\\vae_lib\\Cache``. Never ``site-packages``, which may be read-only and
   is not removed by ``pip uninstall``.

Nothing here creates a folder; the callers create what they write into.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

#: The distribution name in ``pyproject.toml`` and the folder name under the per-user folders.
PROJECT = "vae_lib"
#: The folder of the imported package (``.../vae_lib``): in a checkout, its parent is the repo.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The folder names inside a source checkout, as before this module existed.
CHECKOUT_FOLDERS = {"data": "data", "cache": ".cache"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name(pyproject: Path) -> str | None:
    """``[project] name`` of a ``pyproject.toml``, or ``None`` if unreadable or absent."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the name = "..." line of the [project] table
        table = None
        for line in text.splitlines():
            if line.startswith("["):
                table = line.split("#")[0].strip()
            elif table == "[project]":
                match = re.match(r"name\s*=\s*[\"']([^\"']+)[\"']", line)
                if match:
                    return match.group(1)
        return None
    try:
        name = tomllib.loads(text).get("project", {}).get("name")
    except tomllib.TOMLDecodeError:
        return None
    return name if isinstance(name, str) else None


def source_checkout(package_dir: str | os.PathLike | None = None) -> Path | None:
    """The root of the source checkout the package runs from, or ``None`` when it is installed.

    A checkout is the parent of the package folder when that parent holds a ``pyproject.toml``
    whose project is ``vae_lib`` *and* a ``.git`` (folder or, in a worktree, file) or a
    ``chapters/`` folder. A wheel installed into ``site-packages`` has neither beside it, an
    editable install (``pip install -e .``) imports from the checkout itself.

    Args:
        package_dir: the package folder to judge (default: the imported package's,
            :data:`PACKAGE_DIR`).
    """
    package = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    root = package.parent
    if not ((root / ".git").exists() or (root / "chapters").is_dir()):
        return None
    name = _project_name(root / "pyproject.toml")
    if name is None or _normalise(name) != _normalise(PROJECT):
        return None
    return root


def default_folder(
    kind: Literal["data", "cache"], package_dir: str | os.PathLike | None = None
) -> Path:
    """The folder used when no environment variable is set (rules 2 and 3 of the module)."""
    if kind not in CHECKOUT_FOLDERS:
        raise ValueError(f"kind must be 'data' or 'cache', got {kind!r}")
    root = source_checkout(package_dir)
    if root is not None:
        return root / CHECKOUT_FOLDERS[kind]
    import platformdirs  # imported here: only an installed package needs it

    # appauthor=False: on Windows %LOCALAPPDATA%\vae_lib, not %LOCALAPPDATA%\vae_lib\vae_lib
    if kind == "data":
        return Path(platformdirs.user_data_dir(PROJECT, appauthor=False)).resolve()
    return Path(platformdirs.user_cache_dir(PROJECT, appauthor=False)).resolve()


def folder_from_env(env_var: str) -> Path | None:
    """``$env_var`` as an absolute path (``~`` expanded), or ``None`` if unset or blank."""
    value = os.environ.get(env_var, "").strip()
    if not value:
        return None
    return Path(value).expanduser().resolve()


def resolve_folder(
    env_var: str, kind: Literal["data", "cache"], package_dir: str | os.PathLike | None = None
) -> Path:
    """``$env_var`` if set, else :func:`default_folder` ``(kind)``; an absolute path."""
    from_env = folder_from_env(env_var)
    return from_env if from_env is not None else default_folder(kind, package_dir)


CACHE_ENV_VAR = "VAE_LIB_CACHE"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder (retrained zoo models), as an absolute path: the argument, else
    ``$VAE_LIB_CACHE``, else ``.cache/`` in the repo when the package runs from a source
    checkout, else the per-user cache folder (``platformdirs.user_cache_dir("vae_lib")``, e.g.
    ``~/.cache/vae_lib``), never ``site-packages``.

    ``~`` is expanded. A relative path (``VAE_LIB_CACHE=models``) is taken relative to the
    current working directory *at the time of the call*; Jupyter runs a notebook in its own
    folder and a script runs wherever it is started, so to share one cache between the book's
    notebooks and your scripts give an absolute path.
    """
    if path is not None:
        return Path(path).expanduser().resolve()
    return resolve_folder(CACHE_ENV_VAR, "cache")
