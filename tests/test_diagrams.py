"""Tests of vae_lib.diagrams: the graphs are well formed and drawn as specified (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from vae_lib import diagrams as D  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def boxes(ax):
    """The node texts of an axes (those drawn with a box), by label."""
    return {t.get_text(): t for t in ax.texts if t.get_bbox_patch() is not None}


def test_the_five_models_are_described():
    assert list(D.TRAINING_GRAPHS) == ["AE", "DAE", "VAE", "GAN", "RBM"]
    for graph in D.TRAINING_GRAPHS.values():
        assert graph.cost_nodes, f"{graph.title} has no cost term"


def test_only_the_vae_has_a_kl_term_and_it_is_the_highlighted_node():
    highlighted = {
        key: [n.name for n in g.nodes if n.highlight] for key, g in D.TRAINING_GRAPHS.items()
    }
    assert highlighted == {"AE": [], "DAE": [], "VAE": ["kl"], "GAN": [], "RBM": []}
    assert "KL" in D.TRAINING_GRAPHS["VAE"].node("kl").label
    assert all(
        "KL" not in n.label for k, g in D.TRAINING_GRAPHS.items() if k != "VAE" for n in g.nodes
    )


def test_the_autoencoders_differ_from_the_vae_by_the_kl_term_and_the_noise():
    def costs(key):
        return {n.name for n in D.TRAINING_GRAPHS[key].cost_nodes}

    assert costs("AE") == costs("DAE") == {"rec"}
    assert costs("VAE") == {"rec", "kl"}
    kinds = {k: {n.kind for n in g.nodes} for k, g in D.TRAINING_GRAPHS.items()}
    assert "noise" not in kinds["AE"] and "noise" in kinds["DAE"] and "noise" in kinds["VAE"]


def test_draw_puts_one_box_per_node_and_one_arrow_per_edge():
    for graph in D.TRAINING_GRAPHS.values():
        fig, ax = plt.subplots()
        D.draw_training_graph(graph, ax)
        assert set(boxes(ax)) == {n.label for n in graph.nodes}
        arrows = [c for c in ax.get_children() if isinstance(c, Annotation)]
        assert len(arrows) == len(graph.edges)
        assert ax.get_title(loc="left") == graph.title
        plt.close(fig)


def test_the_highlighted_node_is_drawn_in_the_highlight_colour():
    ax = D.draw_training_graph(D.TRAINING_GRAPHS["VAE"])
    drawn = boxes(ax)
    kl = drawn[D.TRAINING_GRAPHS["VAE"].node("kl").label].get_bbox_patch()
    assert kl.get_facecolor() == to_rgba(D.HIGHLIGHT[0])
    rec = drawn[D.TRAINING_GRAPHS["VAE"].node("rec").label].get_bbox_patch()
    assert rec.get_facecolor() == to_rgba(D.NODE_STYLES["cost"][1])


def test_plot_training_graphs_draws_the_selection_in_order():
    fig = D.plot_training_graphs(["GAN", "VAE"])
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["Generative adversarial network", "Variational autoencoder"]
    assert len(D.plot_training_graphs().axes) == 5


@pytest.mark.parametrize("names", [[], ["VAE", "Flow"]])
def test_unknown_selections_raise(names):
    with pytest.raises(ValueError, match="selection"):
        D.plot_training_graphs(names)


def test_malformed_graphs_raise():
    a = D.Node("a", "a", 1, 1, "data")
    with pytest.raises(ValueError, match="names no node"):
        D.TrainingGraph("t", (a,), (D.Edge("a", "b"),))
    with pytest.raises(ValueError, match="unique"):
        D.TrainingGraph("t", (a, a), ())
    with pytest.raises(ValueError, match="kind"):
        D.Node("a", "a", 1, 1, "mystery")
    with pytest.raises(ValueError, match="lie in"):
        D.Node("a", "a", 11, 1, "data")
    with pytest.raises(ValueError, match="TrainingGraph"):
        D.draw_training_graph("VAE")
