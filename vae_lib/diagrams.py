"""Conceptual training graphs: what one training step of a generative model computes.

Each graph is a small flow chart of one training step: data and latent variables, the networks
that map between them, injected noise, and the cost term(s) that the step's gradient comes from.
:data:`TRAINING_GRAPHS` holds the five models that the comparison chapter sets side by side (a
plain autoencoder, a denoising autoencoder, a VAE, a GAN and an RBM), and
:func:`plot_training_graphs` draws them one above the other. The VAE's KL term, the one cost term
that no other model has, is highlighted.

A graph is data (:class:`TrainingGraph` of :class:`Node` and :class:`Edge`) checked when it is
built, so a typo in a node name fails loudly instead of drawing a dangling arrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: How each kind of node is drawn: (box style, face colour, edge colour, line style).
NODE_STYLES: dict[str, tuple[str, str, str, str]] = {
    "data": ("round,pad=0.35", "#e8e8e8", "#444444", "solid"),
    "latent": ("round,pad=0.35", "#fff3c4", "#8a6d00", "solid"),
    "noise": ("round,pad=0.35", "#ffffff", "#666666", "dashed"),
    "network": ("square,pad=0.45", "#d6e6f5", "#1f4e79", "solid"),
    "cost": ("round4,pad=0.4", "#fbe0d4", "#a23b12", "solid"),
}
#: Face and edge colour of a highlighted node (the VAE's KL term): blue, as in the seed figure.
HIGHLIGHT = ("#cfe0ff", "#0b3d91")


@dataclass(frozen=True)
class Node:
    """A box in a training graph.

    Attributes:
        name: identifier used by :class:`Edge` (unique within a graph).
        label: the text shown (Matplotlib mathtext allowed, e.g. ``r"$\\hat{x}$"``).
        x, y: centre, in the graph's coordinates (x in [0, 10], y in [0, 2.4]).
        kind: one of :data:`NODE_STYLES` (data, latent, noise, network, cost).
        highlight: draw in :data:`HIGHLIGHT` colours (used for the VAE's KL term).
    """

    name: str
    label: str
    x: float
    y: float
    kind: str
    highlight: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NODE_STYLES:
            raise ValueError(f"node {self.name!r}: kind must be one of {list(NODE_STYLES)}")
        if not (0 <= self.x <= 10 and 0 <= self.y <= 2.4):
            raise ValueError(f"node {self.name!r}: (x, y) must lie in [0, 10] x [0, 2.4]")


@dataclass(frozen=True)
class Edge:
    """An arrow from node ``src`` to node ``dst``.

    Attributes:
        src, dst: node names.
        label: optional text placed at the arrow's middle.
        dashed: dashed arrows feed a cost term (they carry no computation of the model).
        rad: curvature (0 is straight; see Matplotlib's ``arc3`` connection style).
    """

    src: str
    dst: str
    label: str = ""
    dashed: bool = False
    rad: float = 0.0


@dataclass(frozen=True)
class TrainingGraph:
    """One model's training step: nodes, arrows, a title and a one-line caption."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    caption: str = ""

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.title}: node names must be unique, got {names}")
        for e in self.edges:
            for end in (e.src, e.dst):
                if end not in names:
                    raise ValueError(f"{self.title}: edge {e.src!r} -> {e.dst!r} names no node")

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def cost_nodes(self) -> tuple[Node, ...]:
        """The cost terms that drive this model's training step."""
        return tuple(n for n in self.nodes if n.kind == "cost")


_Y, _LOW, _HIGH = 1.2, 0.25, 2.15  # main row, cost row, noise row

TRAINING_GRAPHS: dict[str, TrainingGraph] = {
    "AE": TrainingGraph(
        "Autoencoder",
        (
            Node("x", "$x$", 0.5, _Y, "data"),
            Node("enc", "encoder", 2.0, _Y, "network"),
            Node("z", "$z = f(x)$", 3.6, _Y, "latent"),
            Node("dec", "decoder", 5.2, _Y, "network"),
            Node("xhat", r"$\hat{x} = g(z)$", 6.8, _Y, "data"),
            Node("rec", r"reconstruction  $-\log p(x \mid z)$", 3.6, _LOW, "cost"),
        ),
        (
            Edge("x", "enc"),
            Edge("enc", "z"),
            Edge("z", "dec"),
            Edge("dec", "xhat"),
            Edge("x", "rec", dashed=True),
            Edge("xhat", "rec", dashed=True),
        ),
        "one deterministic code per image; the only cost is reconstruction",
    ),
    "DAE": TrainingGraph(
        "Denoising autoencoder",
        (
            Node("x", "$x$", 0.5, _Y, "data"),
            Node("corrupt", "corrupt", 1.8, _Y, "noise"),
            Node("xt", r"$\tilde{x}$", 3.0, _Y, "data"),
            Node("enc", "encoder", 4.2, _Y, "network"),
            Node("z", "$z$", 5.4, _Y, "latent"),
            Node("dec", "decoder", 6.6, _Y, "network"),
            Node("xhat", r"$\hat{x}$", 7.8, _Y, "data"),
            Node(
                "rec", r"reconstruction of the clean $x$:  $-\log p(x \mid z)$", 4.2, _LOW, "cost"
            ),
        ),
        (
            Edge("x", "corrupt"),
            Edge("corrupt", "xt"),
            Edge("xt", "enc"),
            Edge("enc", "z"),
            Edge("z", "dec"),
            Edge("dec", "xhat"),
            Edge("x", "rec", dashed=True),
            Edge("xhat", "rec", dashed=True),
        ),
        "the encoder sees a damaged copy; the decoder is scored on the clean image",
    ),
    "VAE": TrainingGraph(
        "Variational autoencoder",
        (
            Node("x", "$x$", 0.5, _Y, "data"),
            Node("enc", "encoder", 1.8, _Y, "network"),
            Node("musig", r"$\mu, \sigma$", 3.1, _Y, "latent"),
            Node("eps", r"$\epsilon \sim \mathcal{N}(0, I)$", 4.7, _HIGH, "noise"),
            Node("z", r"$z = \mu + \sigma \odot \epsilon$", 4.7, _Y, "latent"),
            Node("dec", "decoder", 6.3, _Y, "network"),
            Node("xhat", r"$\hat{x}$", 7.5, _Y, "data"),
            Node("rec", r"reconstruction  $-\log p(x \mid z)$", 4.0, _LOW, "cost"),
            Node(
                "kl",
                r"$\mathrm{KL}(q(z \mid x) \,\|\, p(z))$",
                1.9,
                _HIGH,
                "cost",
                highlight=True,
            ),
        ),
        (
            Edge("x", "enc"),
            Edge("enc", "musig"),
            Edge("musig", "z"),
            Edge("eps", "z"),
            Edge("z", "dec"),
            Edge("dec", "xhat"),
            Edge("x", "rec", dashed=True),
            Edge("xhat", "rec", dashed=True),
            Edge("musig", "kl", dashed=True),
        ),
        "a distribution per image, sampled by reparameterization; the KL term is the extra cost",
    ),
    "GAN": TrainingGraph(
        "Generative adversarial network",
        (
            Node("z", r"$z \sim \mathcal{N}(0, I)$", 0.8, _HIGH, "noise"),
            Node("gen", "generator", 2.6, _HIGH, "network"),
            Node("fake", r"$G(z)$", 4.2, _HIGH, "data"),
            Node("real", "$x$ (data)", 4.2, _LOW, "data"),
            Node("disc", "discriminator", 5.8, _Y, "network"),
            Node("d", r"$D(\cdot) \in (0, 1)$", 7.3, _Y, "latent"),
            Node(
                "bce",
                "real/fake cross-entropy\nD: tell them apart\n"
                r"G: maximise $\log D(G(z))$",
                9.0,
                _Y,
                "cost",
            ),
        ),
        (
            Edge("z", "gen"),
            Edge("gen", "fake"),
            Edge("fake", "disc"),
            Edge("real", "disc"),
            Edge("disc", "d"),
            Edge("d", "bce", dashed=True),
        ),
        "no encoder and no likelihood: two networks play a game on one cost",
    ),
    "RBM": TrainingGraph(
        "Restricted Boltzmann machine",
        (
            Node("v0", "$v_0 = x$", 0.6, _Y, "data"),
            Node("h0", "$h_0$", 2.4, _Y, "latent"),
            Node("vk", "$v_k$", 4.6, _Y, "data"),
            Node("hk", "$h_k$", 6.4, _Y, "latent"),
            Node(
                "cd",
                r"CD-$k$ update  $\Delta W \propto \langle v h^\top \rangle_0"
                r" - \langle v h^\top \rangle_k$",
                3.5,
                _LOW,
                "cost",
            ),
        ),
        (
            Edge("v0", "h0", r"$p(h \mid v)$"),
            Edge("h0", "vk", r"$k$ Gibbs steps"),
            Edge("vk", "hk", r"$p(h \mid v)$"),
            Edge("h0", "cd", dashed=True),
            Edge("hk", "cd", dashed=True),
        ),
        "no cost is evaluated: the update approximates the log-likelihood gradient",
    ),
}


def draw_training_graph(graph: TrainingGraph, ax: Axes | None = None) -> Axes:
    """Draw one :class:`TrainingGraph` on ``ax`` (a new figure if None) and return ``ax``."""
    if not isinstance(graph, TrainingGraph):
        raise ValueError(f"graph must be a TrainingGraph, got {type(graph).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 2.4))
    ax.set_xlim(-0.2, 10.4)
    ax.set_ylim(-0.25, 2.65)
    ax.set_axis_off()
    boxes = {}
    for n in graph.nodes:
        boxstyle, face, edge, linestyle = NODE_STYLES[n.kind]
        if n.highlight:
            face, edge = HIGHLIGHT
        boxes[n.name] = ax.text(
            n.x,
            n.y,
            n.label,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold" if n.highlight else "normal",
            bbox={
                "boxstyle": boxstyle,
                "facecolor": face,
                "edgecolor": edge,
                "linestyle": linestyle,
                "linewidth": 2.0 if n.highlight else 1.2,
            },
            zorder=3,
        )
    for e in graph.edges:
        src, dst = graph.node(e.src), graph.node(e.dst)
        colour = HIGHLIGHT[1] if dst.highlight else ("#a23b12" if e.dashed else "#333333")
        ax.annotate(
            "",
            xy=(dst.x, dst.y),
            xytext=(src.x, src.y),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "linestyle": "--" if e.dashed else "-",
                "linewidth": 1.3,
                "patchA": boxes[e.src].get_bbox_patch(),
                "patchB": boxes[e.dst].get_bbox_patch(),
                "shrinkA": 2,
                "shrinkB": 2,
                "connectionstyle": f"arc3,rad={e.rad}",
            },
            zorder=2,
        )
        if e.label:
            ax.text(
                (src.x + dst.x) / 2,
                (src.y + dst.y) / 2 + 0.32,
                e.label,
                ha="center",
                va="center",
                fontsize=9,
                color="#333333",
            )
    ax.set_title(graph.title, loc="left", fontsize=12)
    if graph.caption:
        ax.text(10.4, 2.6, graph.caption, ha="right", va="top", fontsize=9, style="italic")
    return ax


def plot_training_graphs(names: Sequence[str] | None = None) -> Figure:
    """Draw the training graphs of :data:`TRAINING_GRAPHS` one above the other.

    Args:
        names: keys of :data:`TRAINING_GRAPHS` in the order to draw them (default: all, in the
            order AE, DAE, VAE, GAN, RBM).

    Returns:
        the figure, one axes per model.
    """
    names = list(TRAINING_GRAPHS) if names is None else list(names)
    unknown = [n for n in names if n not in TRAINING_GRAPHS]
    if unknown or not names:
        raise ValueError(f"names must be a non-empty selection of {list(TRAINING_GRAPHS)}")
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.5 * len(names)))
    axes = [axes] if len(names) == 1 else list(axes)
    for ax, name in zip(axes, names, strict=True):
        draw_training_graph(TRAINING_GRAPHS[name], ax)
    fig.tight_layout()
    return fig
