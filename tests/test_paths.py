"""Where data and the model cache go (vae_lib.paths): the repo's folders inside a source checkout,
the per-user folders of platformdirs once installed (never site-packages), the environment
variables before both. ``.ci/run`` checks the same with a real wheel in a fresh environment."""

from __future__ import annotations

import fnmatch
import sys
import sysconfig
from pathlib import Path

import platformdirs
import pytest

import vae_lib
from vae_lib import paths, zoo

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VARS = ("VAE_LIB_DATA", "VAE_LIB_CACHE")
PYPROJECT = (
    '[build-system]\nrequires = ["setuptools"]\n\n[project]\nname = "{name}"\nversion = "1"\n'
)


@pytest.fixture
def no_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """Per-user folders under tmp_path (honoured by platformdirs on Linux and other Unixes)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


def make_site_packages(tmp_path: Path) -> Path:
    """A package folder laid out as a wheel installs it: ``.../site-packages/vae_lib``."""
    package = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "vae_lib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    return package


def make_checkout(tmp_path: Path, *, name="vae_lib", marker=".git") -> Path:
    root = tmp_path / "clone"
    (root / "vae_lib").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    if marker == ".git-file":  # a git worktree or submodule: .git is a file
        (root / ".git").write_text("gitdir: /elsewhere\n")
    elif marker:
        (root / marker).mkdir()
    return root / "vae_lib"


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def user_folders() -> tuple[Path, Path]:
    data = Path(platformdirs.user_data_dir("vae_lib", appauthor=False)).resolve()
    cache = Path(platformdirs.user_cache_dir("vae_lib", appauthor=False)).resolve()
    return data, cache


# -- inside this checkout: the repo's folders, as before ---------------------------------------
def test_this_repository_is_detected_as_a_checkout():
    assert paths.PACKAGE_DIR == REPO_ROOT / "vae_lib"
    assert paths.source_checkout() == REPO_ROOT


def test_inside_the_checkout_the_repo_folders_are_used(no_env):
    assert vae_lib.data.data_root() == REPO_ROOT / "data"
    assert vae_lib.paths.cache_dir() == REPO_ROOT / ".cache"


# -- installed (a wheel in site-packages): per-user folders ------------------------------------
def test_an_installed_package_uses_the_per_user_folders(tmp_path, monkeypatch, no_env, user_dirs):
    package = make_site_packages(tmp_path)
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    before = tree(tmp_path)

    assert paths.source_checkout() is None
    data, cache = user_folders()
    assert vae_lib.data.data_root() == data
    assert vae_lib.paths.cache_dir() == cache
    if sys.platform.startswith("linux"):
        assert data == tmp_path / "xdg-data" / "vae_lib"
        assert cache == tmp_path / "xdg-cache" / "vae_lib"
    # neither is next to the package, and asking for them creates nothing
    for folder in (vae_lib.data.data_root(), vae_lib.paths.cache_dir()):
        assert not folder.is_relative_to(package.parent)
    assert tree(tmp_path) == before


def test_the_fallback_is_never_the_real_site_packages(tmp_path, monkeypatch, no_env, user_dirs):
    # the folder where a non-editable install of this interpreter would put the package
    package = Path(sysconfig.get_path("purelib")) / "vae_lib"
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    assert paths.source_checkout() is None
    for folder in (vae_lib.data.data_root(), vae_lib.paths.cache_dir()):
        assert not folder.is_relative_to(package.parent)


@pytest.mark.parametrize("kind", ["data", "cache"])
def test_default_folder_takes_an_explicit_package_dir(tmp_path, kind, user_dirs):
    installed = make_site_packages(tmp_path)
    checkout = make_checkout(tmp_path)
    assert paths.default_folder(kind, installed) == user_folders()[kind == "cache"]
    assert paths.default_folder(kind, checkout) == checkout.parent / paths.CHECKOUT_FOLDERS[kind]
    with pytest.raises(ValueError, match="kind"):
        paths.default_folder("weights", installed)  # type: ignore[arg-type]


# -- what counts as a checkout ----------------------------------------------------------------
@pytest.mark.parametrize("marker", [".git", ".git-file", "chapters"])
@pytest.mark.parametrize("name", ["vae_lib", "vae-lib", "VAE.Lib"])
def test_a_checkout_needs_this_projects_pyproject_and_a_git_or_chapters_folder(
    tmp_path, marker, name
):
    package = make_checkout(tmp_path, name=name, marker=marker)
    assert paths.source_checkout(package) == package.parent


@pytest.mark.parametrize(
    "setup",
    ["no marker", "other project", "no pyproject", "broken pyproject", "no project table"],
)
def test_lookalikes_are_not_checkouts(tmp_path, setup):
    marker = None if setup == "no marker" else ".git"
    name = "someone-elses-project" if setup == "other project" else "vae_lib"
    package = make_checkout(tmp_path, name=name, marker=marker)
    pyproject = package.parent / "pyproject.toml"
    if setup == "no pyproject":
        pyproject.unlink()
    elif setup == "broken pyproject":
        pyproject.write_text('[project\nname = "vae_lib"\n')
    elif setup == "no project table":
        pyproject.write_text('[tool.other]\nname = "vae_lib"\n')
    assert paths.source_checkout(package) is None


def test_the_project_name_is_read_without_tomllib_too(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: a line-based reader of the [project] table stands in."""
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` now fails
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.x]\nname = "not-this"\n\n[project]  # the package\nversion = "1"\n'
        "name = 'vae_lib'\n\n[tool.y]\nname = \"nor-this\"\n"
    )
    assert paths._project_name(pyproject) == "vae_lib"
    pyproject.write_text('[tool.x]\nname = "vae_lib"\n')
    assert paths._project_name(pyproject) is None
    package = make_checkout(tmp_path)
    assert paths.source_checkout(package) == package.parent


# -- the environment variables come first, wherever the package is -----------------------------
@pytest.mark.parametrize("installed", [False, True], ids=["checkout", "installed"])
def test_environment_variables_override_both(tmp_path, monkeypatch, user_dirs, installed):
    if installed:
        monkeypatch.setattr(paths, "PACKAGE_DIR", make_site_packages(tmp_path))
    monkeypatch.setenv("VAE_LIB_DATA", str(tmp_path / "my-data"))
    monkeypatch.setenv("VAE_LIB_CACHE", str(tmp_path / "my-cache"))
    assert vae_lib.data.data_root() == tmp_path / "my-data"
    assert vae_lib.paths.cache_dir() == tmp_path / "my-cache"
    # an argument still beats the variable
    assert vae_lib.data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert vae_lib.paths.cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_environment_values_are_expanded_resolved_and_blank_means_unset(
    tmp_path, monkeypatch, user_dirs
):
    monkeypatch.setattr(paths, "PACKAGE_DIR", make_site_packages(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VAE_LIB_DATA", "~/mnist")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAE_LIB_CACHE", "models")
    assert vae_lib.data.data_root() == tmp_path / "home" / "mnist"
    assert vae_lib.paths.cache_dir() == tmp_path / "models"
    monkeypatch.setenv("VAE_LIB_DATA", "  ")
    monkeypatch.setenv("VAE_LIB_CACHE", "")
    assert (vae_lib.data.data_root(), vae_lib.paths.cache_dir()) == user_folders()


# -- the wheel carries the model zoo ------------------------------------------------------------
def test_package_data_covers_every_shipped_weight_file():
    """pyproject's package-data globs match the manifest and every file in weights/ (the wheel
    itself is built and listed by .ci/run)."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["vae_lib"]
    shipped = [p.relative_to(paths.PACKAGE_DIR).as_posix() for p in zoo.WEIGHTS_DIR.iterdir()]
    manifest = zoo.read_manifest()["models"]
    assert "weights/manifest.json" in shipped
    assert {f"weights/{info['file']}" for info in manifest.values()} <= set(shipped)
    unmatched = [f for f in shipped if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not unmatched, f"in vae_lib/weights but not in the wheel: {unmatched}"
