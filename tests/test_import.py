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
    "latent_grid",
    "plot_history",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "set_theme",
    "show_images",
)
#: The public namespace, pinned: a name is added here deliberately, or not at all (at most 100).
PUBLIC = {
    "models and their configs": "VAE VAEConfig ConvVAE ConvVAEConfig Autoencoder "
    "AutoencoderConfig DenoisingAutoencoder DenoisingAutoencoderConfig LinearGaussian GAN "
    "GANConfig RBM RBMConfig DigitClassifier ClassifierConfig ConditionalVAE "
    "ConditionalVAEConfig QuadrantRegressor QuadrantRegressorConfig SemiSupervisedVAE "
    "SemiSupervisedVAEConfig SequenceVAE SequenceVAEConfig",
    "training": "Trainable fit evaluate History NonFiniteLossError",
    "zoo": "zoo widgets",
    "densities": "bernoulli_log_likelihood diagonal_gaussian_log_prob standard_normal_log_prob "
    "reparameterize log_mean_exp gaussian_kl gaussian_kl_full gaussian_entropy discrete_entropy "
    "discrete_cross_entropy discrete_kl elbo",
    "estimators": "iwae_bound naive_log_px prior_log_likelihoods running_log_mean_exp "
    "effective_sample_size pathwise_gradient score_function_gradient encoder_gradient_variance",
    "data": "load_mnist load_words word_list CharVocabulary observe one_hot",
    "ring": "ring_map ring_inverse ring_log_density sample_ring sample_gaussian_2d grid_edges "
    "histogram_2d cell_probabilities total_variation",
    "latent space": "encode_mean interpolate lerp slerp attribute_vector apply_attribute "
    "active_units kl_per_dimension rate_distortion sample_from_codes",
    "measuring": "accuracy confidence classifier_features frechet_distance "
    "reconstruction_cross_entropy count_parameters slant ink regressor_cross_entropy "
    "accuracy_on_images character_matches",
    "GAN and RBM": "gan_training_step cd_gradient ais_log_partition base_rate_visible_bias",
    "device": "default_device set_seed",
    "figures": " ".join(LAZY_NAMES),
}


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


def test_the_public_names_are_the_pinned_list_of_at_most_100():
    pinned = [name for names in PUBLIC.values() for name in names.split()]
    assert sorted(vae_lib.__all__) == sorted(pinned)
    assert len(pinned) == len(set(pinned)) <= 100


def test_the_chapters_import_only_public_names_or_submodules():
    import ast

    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and node.module == "vae_lib":
                private = [a.name for a in node.names if a.name not in vae_lib.__all__]
                assert not private, f"{path.name} imports {private} from vae_lib"


def test_no_import_cycle_between_the_librarys_modules():
    """Counting imports inside functions too: a module never needs one that needs it."""
    import ast

    package = ROOT / "vae_lib"
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        name = ".".join(parts)
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = parts[: len(parts) - node.level + (rel.name == "__init__")]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.add(
                        full
                        if (package.parent / full.replace(".", "/")).with_suffix(".py").exists()
                        or (package.parent / full.replace(".", "/")).is_dir()
                        else target
                    )
    for name in list(graph):
        graph[name] = {t for t in graph[name] if t in graph and t != name}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for t in graph[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return seen

    cycles = sorted(n for n in graph if n in reach(n))
    assert not cycles, f"import cycles through {cycles}"


def test_lazy_names_are_the_modules_own_objects():
    from vae_lib import plotting

    for name in LAZY_NAMES:
        assert getattr(vae_lib, name) is getattr(plotting, name), name
    assert vae_lib.plotting is plotting


def test_from_import_works_and_loads_only_what_it_needs():
    result = _json(
        """
        import json, sys
        from vae_lib import show_images
        import vae_lib
        print(json.dumps({
            "same": vae_lib.show_images is show_images,
            "plotting": "vae_lib.plotting" in sys.modules,
            "torchvision": "torchvision" in sys.modules,
            "diagrams": "vae_lib.diagrams" in sys.modules,
        }))
        """
    )
    # torchvision waits for the first image grid, not for the plotting module
    assert result == {"same": True, "plotting": True, "torchvision": False, "diagrams": False}


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
            vae_lib.device.configure_threads()
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
