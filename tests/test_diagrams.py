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


def forward_arrows(ax):
    """The arrows drawn on an axes (one Annotation per edge)."""
    return [c for c in ax.get_children() if isinstance(c, Annotation)]


def arrow_colours(ax):
    return [to_rgba(a.arrow_patch.get_edgecolor()) for a in forward_arrows(ax)]


def test_vae_structure_is_encoder_sample_decoder_with_two_cost_terms():
    g = D.VAE_STRUCTURE
    # the forward path x -> encoder -> (mu, sigma) -> z -> decoder -> reconstruction
    chain = ["x", "enc", "musig", "z", "dec", "xhat"]
    for a, b in zip(chain, chain[1:], strict=False):
        assert any(e.src == a and e.dst == b and not e.dashed for e in g.edges), (a, b)
    assert g.reaches("x", "xhat") and not g.reaches("xhat", "x")
    # the noise is injected into z, and only there; it is the only random node
    assert [n.name for n in g.random_nodes] == ["eps"] and g.node("eps").kind == "noise"
    assert [e.dst for e in g.edges if e.src == "eps"] == ["z"]
    assert "\\epsilon" in g.node("z").label and "\\sigma" in g.node("z").label
    # the two loss terms: reconstruction compares x with the decoder's output, KL reads mu, sigma
    assert {n.name for n in g.cost_nodes} == {"rec", "kl"}
    assert {e.src for e in g.edges if e.dst == "rec"} == {"x", "xhat"}
    assert {e.src for e in g.edges if e.dst == "kl"} == {"musig"}
    assert "KL" in g.node("kl").label and "p(z)" in g.node("kl").label
    assert "q_\\phi" in g.node("enc").label and "p_\\theta" in g.node("dec").label


def test_plot_vae_structure_draws_every_node_and_edge():
    fig = D.plot_vae_structure()
    (ax,) = fig.axes
    assert set(boxes(ax)) == {n.label for n in D.VAE_STRUCTURE.nodes}
    assert len(forward_arrows(ax)) == len(D.VAE_STRUCTURE.edges)
    assert ax.get_title(loc="left") == D.VAE_STRUCTURE.title


def test_the_gradient_reaches_phi_only_in_the_reparameterized_form():
    original, reparam = D.REPARAMETERIZATION_GRAPHS.values()
    assert list(D.REPARAMETERIZATION_GRAPHS) == ["original", "reparameterized"]
    # both forms compute f from phi and x
    for g in (original, reparam):
        assert g.reaches("phi", "f") and g.reaches("x", "f")
        assert g.reaches("f", "z", gradient=True)
    assert not original.reaches("f", "phi", gradient=True)
    assert reparam.reaches("f", "phi", gradient=True)
    # the original form's z -> phi arrow is drawn, but as a blocked gradient
    (blocked,) = [e for e in original.edges if e.blocked]
    assert (blocked.src, blocked.dst) == ("z", "phi")
    assert not any(e.blocked for e in reparam.edges)
    grad = {
        k: [(e.src, e.dst) for e in g.edges if e.gradient]
        for k, g in D.REPARAMETERIZATION_GRAPHS.items()
    }
    assert grad == {"original": [("f", "z")], "reparameterized": [("f", "z"), ("z", "phi")]}


def test_z_is_random_only_in_the_original_form_and_eps_only_in_the_reparameterized():
    original, reparam = D.REPARAMETERIZATION_GRAPHS.values()
    assert [n.name for n in original.random_nodes] == ["z"]
    assert [n.name for n in reparam.random_nodes] == ["eps"]
    assert reparam.node("z").kind == "latent"
    assert reparam.reaches("eps", "z") and "eps" not in {n.name for n in original.nodes}


def test_plot_reparameterization_graph_has_two_panels_and_red_arrows_where_gradients_flow():
    fig = D.plot_reparameterization_graph()
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "Original form",
        "Reparameterized form",
    ]
    red = to_rgba(D.GRADIENT_COLOUR)
    grey = to_rgba(D.BLOCKED_COLOUR)
    for ax, g in zip(fig.axes, D.REPARAMETERIZATION_GRAPHS.values(), strict=True):
        assert set(boxes(ax)) == {n.label for n in g.nodes}
        colours = arrow_colours(ax)
        assert len(colours) == len(g.edges)
        assert colours.count(red) == sum(e.gradient for e in g.edges)
        assert colours.count(grey) == sum(e.blocked for e in g.edges)
    assert [arrow_colours(ax).count(red) for ax in fig.axes] == [1, 2]
    # random nodes are drawn in the random style, dashed
    face = to_rgba(D.NODE_STYLES["random"][1])
    for ax, g in zip(fig.axes, D.REPARAMETERIZATION_GRAPHS.values(), strict=True):
        drawn = boxes(ax)
        for n in g.nodes:
            is_random_face = drawn[n.label].get_bbox_patch().get_facecolor() == face
            assert is_random_face == (n.kind == "random"), n.name
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "random node (a sample)" in labels and "backpropagated gradient" in labels


def test_reaches_follows_arrows_and_rejects_unknown_nodes():
    a, b, c = (D.Node(n, n, 1, 1, "data") for n in "abc")
    g = D.TrainingGraph(
        "t",
        (a, b, c),
        (D.Edge("a", "b"), D.Edge("c", "b", gradient=True), D.Edge("b", "a", blocked=True)),
    )
    assert g.reaches("a", "b") and not g.reaches("b", "a") and not g.reaches("c", "b")
    assert g.reaches("c", "b", gradient=True) and not g.reaches("a", "b", gradient=True)
    assert not g.reaches("a", "a")
    with pytest.raises(KeyError):
        g.reaches("a", "d")
    with pytest.raises(ValueError, match="not both"):
        D.Edge("a", "b", gradient=True, blocked=True)


def test_graphical_models_match_the_factorisations_of_chapter_7():
    cvae, m2 = D.GRAPHICAL_MODELS["CVAE"], D.GRAPHICAL_MODELS["M2"]
    # p(z | y) p(x | z, y) and q(z | x, y)
    assert cvae.parents("z") == {"y"} and cvae.parents("x") == {"y", "z"}
    assert cvae.parents("z", inference=True) == {"x", "y"}
    # p(y) p(z) p(x | y, z) and q(y | x) q(z | x, y)
    assert m2.parents("y") == set() and m2.parents("z") == set()
    assert m2.parents("x") == {"y", "z"}
    assert m2.parents("y", inference=True) == {"x"}
    assert m2.parents("z", inference=True) == {"x", "y"}
    # x is observed in both; y always in the CVAE, for some images in M2; z never
    assert [cvae.nodes[n][3] for n in "xyz"] == ["yes", "yes", "no"]
    assert [m2.nodes[n][3] for n in "xyz"] == ["yes", "partly", "no"]


def test_graphical_models_are_drawn_with_one_arrow_per_edge():
    fig = D.plot_graphical_models()
    for ax, model in zip(fig.axes, D.GRAPHICAL_MODELS.values(), strict=True):
        arrows = [a for a in ax.texts if isinstance(a, Annotation)]
        dashed = [a for a in arrows if a.arrow_patch.get_linestyle() != "-"]
        assert len(arrows) == len(model.generative) + len(model.inference)
        assert len(dashed) == len(model.inference)
        labels = {t.get_text() for t in ax.texts if not isinstance(t, Annotation)}
        assert {"$x$", "$y$", "$z$"} <= labels
        assert ax.get_title() == model.title


def test_a_graphical_model_with_an_unknown_node_fails():
    with pytest.raises(ValueError, match="unknown node"):
        D.GraphicalModel("bad", {"x": ("$x$", 0, 0, "yes")}, (("z", "x"),), ())
    with pytest.raises(ValueError, match="observed"):
        D.GraphicalModel("bad", {"x": ("$x$", 0, 0, "maybe")}, (), ())
