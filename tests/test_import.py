"""Tests of ``import vae_lib`` itself: it stays light (the figure modules and torchvision are
imported on first use) and a bad environment value does not break it.

Each check runs in a fresh interpreter, since this test session has long imported everything.
No wall-clock times are asserted here (they depend on the machine); the README's figure comes
from medians of repeated fresh imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vae_lib

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("matplotlib", "matplotlib.pyplot", "seaborn", "torchvision")
LAZY_NAMES = (
    "TRAINING_GRAPHS",
    "TrainingGraph",
    "draw_training_graph",
    "plot_training_graphs",
    "VAE_STRUCTURE",
    "REPARAMETERIZATION_GRAPHS",
    "plot_vae_structure",
    "plot_reparameterization_graph",
    "latent_grid",
    "plot_history",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "set_theme",
    "show_images",
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter from the repository root, with ``env`` added (a value
    of ``""`` removes the variable)."""
    environ = {**os.environ, "VAE_LIB_THREADS": "1", "MPLBACKEND": "Agg"}
    for key, value in env.items():
        if value:
            environ[key] = value
        else:
            environ.pop(key, None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _json(code: str, **env: str) -> object:
    done = _python(code, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_does_not_load_plotting_or_torchvision():
    loaded = _json(
        f"""
        import json, sys
        import vae_lib
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """
    )
    assert loaded == []


def test_every_public_name_resolves_and_is_listed():
    result = _json(
        """
        import json
        import vae_lib
        missing = [n for n in vae_lib.__all__ if not hasattr(vae_lib, n)]
        print(json.dumps({"missing": missing, "all": vae_lib.__all__, "dir": dir(vae_lib)}))
        """
    )
    assert isinstance(result, dict)
    assert result["missing"] == []
    assert len(result["all"]) == len(set(result["all"]))
    assert set(LAZY_NAMES) <= set(result["all"])
    assert set(result["all"]) <= set(result["dir"])


def test_lazy_names_are_the_modules_own_objects():
    from vae_lib import diagrams, plotting

    for name in LAZY_NAMES:
        module = plotting if hasattr(plotting, name) else diagrams
        assert getattr(vae_lib, name) is getattr(module, name), name
    assert vae_lib.plotting is plotting and vae_lib.diagrams is diagrams


def test_from_import_works_and_loads_only_what_it_needs():
    result = _json(
        """
        import json, sys
        from vae_lib import show_images, TRAINING_GRAPHS
        import vae_lib
        print(json.dumps({
            "same": vae_lib.show_images is show_images,
            "plotting": "vae_lib.plotting" in sys.modules,
            "torchvision": "torchvision" in sys.modules,
            "graphs": len(TRAINING_GRAPHS),
        }))
        """
    )
    # torchvision waits for the first image grid, not for the plotting module
    assert result == {"same": True, "plotting": True, "torchvision": False, "graphs": 5}


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        vae_lib.no_such_name  # noqa: B018
    assert not hasattr(vae_lib, "no_such_name")


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "99999999999"])
def test_bad_threads_variable_warns_at_import_and_raises_where_used(value):
    done = _python(
        """
        import torch
        before = torch.get_num_threads()
        import vae_lib
        assert torch.get_num_threads() == before, "a bad value must be ignored"
        print("imported")
        try:
            vae_lib.configure_threads()
        except ValueError as err:
            print("ValueError:", err)
        else:
            print("no error")
        """,
        VAE_LIB_THREADS=value,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "imported"
    # the import warns, naming the variable and its value ...
    assert "RuntimeWarning" in done.stderr
    assert f"VAE_LIB_THREADS={value!r}" in done.stderr and "ignored" in done.stderr
    # ... and configure_threads(), where the value is used, raises a clear error
    assert lines[1].startswith(f"ValueError: VAE_LIB_THREADS={value!r} is not a thread count")


def test_good_threads_variable_is_applied_at_import():
    assert _json("import json, torch, vae_lib; print(torch.get_num_threads())") == 1
    done = _python("import vae_lib", VAE_LIB_THREADS="")
    assert done.returncode == 0 and "VAE_LIB_THREADS" not in done.stderr, done.stderr
