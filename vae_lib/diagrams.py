"""Conceptual training graphs: what one training step of a generative model computes.

Each graph is a small flow chart of one training step: data and latent variables, the networks
that map between them, injected noise, and the cost term(s) that the step's gradient comes from.
:data:`TRAINING_GRAPHS` holds the five models that the comparison chapter sets side by side (a
plain autoencoder, a denoising autoencoder, a VAE, a GAN and an RBM), and
:func:`plot_training_graphs` draws them one above the other. The VAE's KL term, the one cost term
that no other model has, is highlighted.

Two more figures use the same data model: :data:`VAE_STRUCTURE`, the VAE's architecture with the
two terms of its loss (:func:`plot_vae_structure`), and :data:`REPARAMETERIZATION_GRAPHS`, the
computational graph of the reparameterization trick in its original and reparameterized forms
(:func:`plot_reparameterization_graph`, after Kingma & Welling 2019, Fig. 2.3): which nodes are
random, and along which arrows the gradient of the cost flows back to the encoder's parameters.

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
    "random": ("round,pad=0.45", "#eadcf7", "#6a3d9a", "dashed"),
    "parameter": ("square,pad=0.4", "#dcefd9", "#2e6b2a", "solid"),
}
#: Colour of the arrows that carry a gradient backwards (backpropagation).
GRADIENT_COLOUR = "#c0001a"
#: Colour of a gradient that cannot be propagated (it would have to pass through a sample).
BLOCKED_COLOUR = "#888888"
#: Face and edge colour of a highlighted node (the VAE's KL term): blue, as in the seed figure.
HIGHLIGHT = ("#cfe0ff", "#0b3d91")


@dataclass(frozen=True)
class Node:
    """A box in a training graph.

    Attributes:
        name: identifier used by :class:`Edge` (unique within a graph).
        label: the text shown (Matplotlib mathtext allowed, e.g. ``r"$\\hat{x}$"``).
        x, y: centre, in the graph's coordinates (x in [0, 10], y in [0, 2.4]).
        kind: one of :data:`NODE_STYLES`: data, latent (deterministic), noise (injected),
            network, cost, random (a sampled random variable), parameter.
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
        gradient: the arrow carries a gradient backwards (drawn in :data:`GRADIENT_COLOUR`),
            from the node that receives a derivative to the node it is passed on to.
        blocked: a gradient that cannot flow (drawn dotted in :data:`BLOCKED_COLOUR` and
            crossed out); it is not part of any gradient path.
        shift: moves the whole arrow by this much, in graph units (a gradient arrow drawn
            beside the forward arrow between the same two nodes).
        label_offset: where the label sits relative to the arrow's middle, in graph units.
    """

    src: str
    dst: str
    label: str = ""
    dashed: bool = False
    rad: float = 0.0
    gradient: bool = False
    blocked: bool = False
    shift: tuple[float, float] = (0.0, 0.0)
    label_offset: tuple[float, float] = (0.0, 0.32)

    def __post_init__(self) -> None:
        if self.gradient and self.blocked:
            raise ValueError(f"edge {self.src!r} -> {self.dst!r}: gradient or blocked, not both")


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

    @property
    def random_nodes(self) -> tuple[Node, ...]:
        """The nodes that are drawn at random (kinds ``random`` and ``noise``)."""
        return tuple(n for n in self.nodes if n.kind in ("random", "noise"))

    def reaches(self, src: str, dst: str, *, gradient: bool = False) -> bool:
        """Whether a chain of arrows leads from node ``src`` to node ``dst``.

        With ``gradient=False`` the forward arrows (not gradient, not blocked) are followed;
        with ``gradient=True`` only the gradient arrows: whether a derivative of ``src`` is
        propagated back to ``dst``.
        """
        for end in (src, dst):
            self.node(end)  # KeyError on a wrong name
        step: dict[str, list[str]] = {}
        for e in self.edges:
            if e.blocked or e.gradient != gradient:
                continue
            step.setdefault(e.src, []).append(e.dst)
        seen, todo = {src}, [src]
        while todo:
            for nxt in step.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return dst in seen and src != dst


_Y, _LOW, _HIGH = 1.2, 0.25, 2.15  # main row, cost row, noise row


def _path(*names: str) -> tuple[Edge, ...]:
    """Solid arrows from each of ``names`` to the next."""
    return tuple(Edge(a, b) for a, b in zip(names[:-1], names[1:], strict=True))


def _reconstruction(rad: float = 0.0) -> tuple[Edge, ...]:
    """The dashed arrows of a reconstruction cost ``rec``: from the data ``x`` (curved by
    ``rad``) and from its reconstruction ``xhat``."""
    return Edge("x", "rec", dashed=True, rad=rad), Edge("xhat", "rec", dashed=True)


def _vae_edges(rad: float = 0.0) -> tuple[Edge, ...]:
    """A VAE's arrows: x -> encoder -> (mu, sigma) -> z <- eps, z -> decoder -> xhat, the
    reconstruction cost (:func:`_reconstruction`) and the KL cost of (mu, sigma)."""
    return (
        *_path("x", "enc", "musig", "z"),
        Edge("eps", "z"),
        *_path("z", "dec", "xhat"),
        *_reconstruction(rad),
        Edge("musig", "kl", dashed=True),
    )


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
        (*_path("x", "enc", "z", "dec", "xhat"), *_reconstruction()),
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
        (*_path("x", "corrupt", "xt", "enc", "z", "dec", "xhat"), *_reconstruction()),
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
        _vae_edges(),
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
            *_path("z", "gen", "fake", "disc"),
            *_path("real", "disc", "d"),
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


def draw_training_graph(
    graph: TrainingGraph,
    ax: Axes | None = None,
    *,
    fontsize: float = 10,
    caption_below: bool = False,
) -> Axes:
    """Draw one :class:`TrainingGraph` on ``ax`` (a new figure if None) and return ``ax``.

    Args:
        graph: what to draw.
        ax: where (default: a new 11 x 2.4 inch figure).
        fontsize: the nodes' font size in points (edge labels and caption are 1 pt smaller).
        caption_below: put the caption under the graph, centred, instead of at the top right
            (for narrow panels).
    """
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
            fontsize=fontsize,
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
        if e.gradient:
            colour, linestyle, width = GRADIENT_COLOUR, "-", 2.6
        elif e.blocked:
            colour, linestyle, width = BLOCKED_COLOUR, ":", 2.0
        elif dst.highlight:
            colour, linestyle, width = HIGHLIGHT[1], "--" if e.dashed else "-", 1.3
        else:
            colour = "#a23b12" if e.dashed else "#333333"
            linestyle, width = "--" if e.dashed else "-", 1.3
        (sx, sy), (dx, dy) = (
            (src.x + e.shift[0], src.y + e.shift[1]),
            (dst.x + e.shift[0], dst.y + e.shift[1]),
        )
        ax.annotate(
            "",
            xy=(dx, dy),
            xytext=(sx, sy),
            arrowprops={
                "arrowstyle": "-|>,head_length=0.6,head_width=0.3" if e.gradient else "-|>",
                "color": colour,
                "linestyle": linestyle,
                "linewidth": width,
                "patchA": boxes[e.src].get_bbox_patch(),
                "patchB": boxes[e.dst].get_bbox_patch(),
                "shrinkA": 2,
                "shrinkB": 2,
                "connectionstyle": f"arc3,rad={e.rad}",
            },
            zorder=2,
        )
        middle = ((sx + dx) / 2, (sy + dy) / 2)
        if e.blocked:  # a cross on the arrow: this derivative does not exist
            ax.text(
                *middle,
                r"$\times$",
                ha="center",
                va="center",
                fontsize=fontsize + 8,
                color=GRADIENT_COLOUR,
                fontweight="bold",
                zorder=4,
            )
        if e.label:
            ax.text(
                middle[0] + e.label_offset[0],
                middle[1] + e.label_offset[1],
                e.label,
                ha="center",
                va="center",
                fontsize=fontsize - 1,
                color=GRADIENT_COLOUR if (e.gradient or e.blocked) else "#333333",
            )
    ax.set_title(graph.title, loc="left", fontsize=fontsize + 2)
    if graph.caption and caption_below:
        ax.text(
            0.5,
            0.0,
            graph.caption,
            ha="center",
            va="top",
            fontsize=fontsize - 1,
            style="italic",
            transform=ax.transAxes,
        )
    elif graph.caption:
        ax.text(
            10.4, 2.6, graph.caption, ha="right", va="top", fontsize=fontsize - 1, style="italic"
        )
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


#: The VAE's structure: encoder, reparameterized sample, decoder, and the two terms of the loss
#: (the negative ELBO is their sum). Drawn by :func:`plot_vae_structure`.
VAE_STRUCTURE = TrainingGraph(
    "The variational autoencoder",
    (
        Node("x", "$x$", 0.3, _Y, "data"),
        Node("enc", "encoder\n" r"$q_\phi(z \mid x)$", 1.75, _Y, "network"),
        Node("musig", r"$\mu_\phi(x),\ \sigma_\phi(x)$", 3.55, _Y, "latent"),
        Node("eps", r"$\epsilon \sim \mathcal{N}(0, I)$", 5.55, _HIGH, "noise"),
        Node("z", r"$z = \mu + \sigma \odot \epsilon$", 5.55, _Y, "latent"),
        Node("dec", "decoder\n" r"$p_\theta(x \mid z)$", 7.35, _Y, "network"),
        Node("xhat", "reconstruction\n" r"$\hat{x}$", 9.0, _Y, "data"),
        Node(
            "rec",
            "reconstruction term\n" r"$-\log p_\theta(x \mid z)$",
            7.6,
            _LOW,
            "cost",
        ),
        Node(
            "kl",
            "KL to the prior\n" r"$\mathrm{KL}(q_\phi(z \mid x) \,\|\, p(z))$",
            2.6,
            _HIGH,
            "cost",
            highlight=True,
        ),
    ),
    _vae_edges(rad=0.1),
    "loss = $-$ELBO = reconstruction term + KL term",
)


def plot_vae_structure() -> Figure:
    """The VAE's structure (:data:`VAE_STRUCTURE`): x through the encoder to mu and sigma, the
    sample z = mu + sigma * eps with injected noise eps, the decoder's reconstruction, and the
    two cost terms (reconstruction and KL to the prior). Returns the figure (one axes)."""
    fig, ax = plt.subplots(figsize=(11, 3.3))
    draw_training_graph(VAE_STRUCTURE, ax, fontsize=11)
    fig.tight_layout()
    return fig


_BOTTOM, _MIDDLE, _TOP = 0.35, 1.3, 2.25  # rows of the computational graphs


def _gradient_edges(blocked: bool) -> tuple[Edge, ...]:
    """The backward arrows of the reparameterization graphs: f to z, then z to phi (blocked in
    the original form), each drawn beside its forward arrow, on the left."""
    to_phi = r"$\partial f / \partial \phi$" + (" ?" if blocked else "")
    return (
        Edge(
            "f",
            "z",
            r"$\partial f / \partial z$",
            gradient=True,
            shift=(-0.32, 0.0),
            label_offset=(-0.85, 0.0),
        ),
        Edge(
            "z",
            "phi",
            to_phi,
            gradient=not blocked,
            blocked=blocked,
            shift=(-0.2, 0.16),
            label_offset=(-0.95, 0.22),
        ),
    )


#: The reparameterization trick's computational graph, after Kingma & Welling (2019), Fig. 2.3:
#: ``"original"``, z sampled from q_phi(z|x), so the derivative of f stops at the random node z;
#: ``"reparameterized"``, z = g(phi, x, eps) deterministic given the noise eps, so the derivative
#: flows back through z to phi. Drawn by :func:`plot_reparameterization_graph`.
REPARAMETERIZATION_GRAPHS: dict[str, TrainingGraph] = {
    "original": TrainingGraph(
        "Original form",
        (
            Node("phi", r"$\phi$", 2.0, _BOTTOM, "parameter"),
            Node("x", "$x$", 6.6, _BOTTOM, "data"),
            Node("z", r"$z \sim q_\phi(z \mid x)$", 4.3, _MIDDLE, "random"),
            Node("f", "$f(z)$", 4.3, _TOP, "cost"),
        ),
        (Edge("phi", "z"), Edge("x", "z"), Edge("z", "f"), *_gradient_edges(blocked=True)),
        "z is a sample: the derivative of f reaches z,\nbut cannot pass through the sampling "
        r"to $\phi$",
    ),
    "reparameterized": TrainingGraph(
        "Reparameterized form",
        (
            Node("phi", r"$\phi$", 2.0, _BOTTOM, "parameter"),
            Node("x", "$x$", 4.9, _BOTTOM, "data"),
            Node("eps", r"$\epsilon \sim \mathcal{N}(0, I)$", 7.8, _BOTTOM, "random"),
            Node("z", r"$z = g(\phi, x, \epsilon)$", 4.3, _MIDDLE, "latent"),
            Node("f", "$f(z)$", 4.3, _TOP, "cost"),
        ),
        (
            Edge("phi", "z"),
            Edge("x", "z"),
            Edge("eps", "z"),
            Edge("z", "f"),
            *_gradient_edges(blocked=False),
        ),
        r"z is deterministic given $\epsilon$: $\partial f / \partial \phi = "
        r"(\partial f / \partial z)(\partial z / \partial \phi)$"
        "\nflows back through z",
    ),
}


def plot_reparameterization_graph() -> Figure:
    """The reparameterization trick's computational graph, two panels side by side
    (:data:`REPARAMETERIZATION_GRAPHS`): the original form, where z is a random node and no
    gradient path leads from f back to phi, and the reparameterized form, where the noise eps is
    the only random node and the gradient flows back through z to phi. A legend below names the
    node and arrow styles. Returns the figure (two axes, the legend on the figure)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.0))
    for ax, graph in zip(axes, REPARAMETERIZATION_GRAPHS.values(), strict=True):
        draw_training_graph(graph, ax, fontsize=14, caption_below=True)
        ax.set_xlim(0.3, 9.3)
        ax.set_ylim(-0.05, 2.6)
    style = NODE_STYLES
    handles = [
        Patch(
            facecolor=style["random"][1],
            edgecolor=style["random"][2],
            linestyle="--",
            label="random node (a sample)",
        ),
        Patch(
            facecolor=style["latent"][1], edgecolor=style["latent"][2], label="deterministic node"
        ),
        Patch(
            facecolor=style["parameter"][1],
            edgecolor=style["parameter"][2],
            label=r"encoder parameters $\phi$",
        ),
        Line2D([], [], color="#333333", lw=1.3, label="forward computation"),
        Line2D([], [], color=GRADIENT_COLOUR, lw=2.6, label="backpropagated gradient"),
        Line2D([], [], color=BLOCKED_COLOUR, lw=2.0, ls=":", label="no gradient path"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=12, frameon=False)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


@dataclass(frozen=True)
class GraphicalModel:
    """A directed graphical model with its approximate posterior, as in Kingma et al. (2014)
    Fig. 1 and Sohn et al. (2015) Fig. 1.

    Attributes:
        title: shown above the drawing.
        nodes: name -> (label, x, y, observed), observed one of "yes" (shaded), "no" (a latent
            variable, white) or "partly" (observed for some examples: half shaded).
        generative: edges (parent, child) of the generative model p: each node's parents are
            the variables its factor is conditioned on.
        inference: edges (parent, child) of the approximate posterior q, drawn dashed.
    """

    title: str
    nodes: dict[str, tuple[str, float, float, str]]
    generative: tuple[tuple[str, str], ...]
    inference: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        for name, (_, _, _, observed) in self.nodes.items():
            if observed not in ("yes", "no", "partly"):
                raise ValueError(f"node {name!r}: observed must be yes, no or partly")
        for src, dst in self.generative + self.inference:
            if src not in self.nodes or dst not in self.nodes:
                raise ValueError(f"{self.title}: edge {src} -> {dst} names an unknown node")

    def parents(self, node: str, *, inference: bool = False) -> set[str]:
        """The parents of ``node`` in p (or in q with ``inference=True``)."""
        edges = self.inference if inference else self.generative
        return {src for src, dst in edges if dst == node}


#: The conditional VAE of chapter 7 (prior p(z | y), decoder p(x | z, y), encoder q(z | x, y)) and
#: Kingma et al.'s model M2 (p(y) p(z) p(x | y, z); q(y | x) and q(z | x, y)).
GRAPHICAL_MODELS: dict[str, GraphicalModel] = {
    "CVAE": GraphicalModel(
        "conditional VAE",
        {
            "y": ("$y$", 0.0, 1.0, "yes"),
            "z": ("$z$", 1.0, 1.0, "no"),
            "x": ("$x$", 0.5, 0.0, "yes"),
        },
        generative=(("y", "z"), ("y", "x"), ("z", "x")),
        inference=(("x", "z"), ("y", "z")),
    ),
    "M2": GraphicalModel(
        "model M2",
        {
            "y": ("$y$", 0.0, 1.0, "partly"),
            "z": ("$z$", 1.0, 1.0, "no"),
            "x": ("$x$", 0.5, 0.0, "yes"),
        },
        generative=(("y", "x"), ("z", "x")),
        inference=(("x", "y"), ("x", "z"), ("y", "z")),
    ),
}


def plot_graphical_models() -> Figure:
    """:data:`GRAPHICAL_MODELS` side by side: circles for variables (shaded where observed,
    half shaded where observed for some images only), solid arrows for the generative model p,
    dashed arrows for the approximate posterior q. Returns the figure (two axes)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Wedge

    radius = 0.17
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, model in zip(axes, GRAPHICAL_MODELS.values(), strict=True):
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(-0.35, 1.35)
        ax.set_aspect("equal")
        ax.set_axis_off()
        circles = {}
        for name, (label, x, y, observed) in model.nodes.items():
            face = {"yes": "#c8c8c8", "no": "white", "partly": "white"}[observed]
            circle = Circle((x, y), radius, facecolor=face, edgecolor="black", lw=1.4, zorder=3)
            ax.add_patch(circle)
            if observed == "partly":
                ax.add_patch(Wedge((x, y), radius, 90, 270, facecolor="#c8c8c8", zorder=3))
                ax.add_patch(
                    Circle((x, y), radius, facecolor="none", edgecolor="black", lw=1.4, zorder=4)
                )
            ax.text(x, y, label, ha="center", va="center", fontsize=15, zorder=5)
            circles[name] = circle
        for edges, dashed in ((model.generative, False), (model.inference, True)):
            for src, dst in edges:
                ax.annotate(
                    "",
                    xy=model.nodes[dst][1:3],
                    xytext=model.nodes[src][1:3],
                    arrowprops={
                        "arrowstyle": "-|>,head_length=0.5,head_width=0.25",
                        "color": "#a23b12" if dashed else "black",
                        "linestyle": "--" if dashed else "-",
                        "lw": 1.4,
                        "patchA": circles[src],
                        "patchB": circles[dst],
                        "shrinkA": 1,
                        "shrinkB": 1,
                        "connectionstyle": f"arc3,rad={0.35 if dashed else 0.0}",
                    },
                    zorder=2,
                )
        ax.set_title(model.title, fontsize=13)
    axes[0].text(
        0.5,
        -0.33,
        "a fixed prior $\\mathcal{N}(0, I)$ drops $y \\to z$ from $p$",
        ha="center",
        va="center",
        fontsize=10,
        style="italic",
    )
    axes[1].text(
        0.5,
        -0.33,
        "$y$ observed for 100 images only",
        ha="center",
        va="center",
        fontsize=10,
        style="italic",
    )
    handles = [
        Line2D([], [], color="black", lw=1.4, label="generative model $p$"),
        Line2D([], [], color="#a23b12", lw=1.4, ls="--", label="approximate posterior $q$"),
        Line2D([], [], marker="o", ls="", mfc="#c8c8c8", mec="black", ms=11, label="observed"),
        Line2D([], [], marker="o", ls="", mfc="white", mec="black", ms=11, label="latent"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig
