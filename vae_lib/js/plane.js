/* vae_lib widgets: a 2-D latent plane (vae_lib.widgets.latent_plane_widget).
 *
 * One panel per model: the encoded test digits as a scatter, coloured by digit, and the image
 * the decoder makes of the point under the pointer. Drag, hover (with a mouse) or use the arrow
 * keys on the plane (shift: five steps); the point's z is read out as text.
 */
(function (R) {
  "use strict";

  const SIZE = 300; // pixels of each plane

  const el = R.el; // document.createElement with attributes (runtime.js)

  function panel(root, id, spec, index, R) {
    const tensors = R.decodeTensors(spec.weights);
    const net = R.mlp(tensors, spec.mlp);
    const [h, w] = spec.imageShape;
    const v = R.view(spec.view.lo, spec.view.hi, SIZE);
    const codes = R.decodeTensors({ tensors: { c: spec.codes } }).c.data;
    const box = el("figure", { class: "vae-w-panel" }, root);
    el("figcaption", { text: spec.title }, box);
    const plane = el("canvas", {
      width: SIZE, height: SIZE, tabindex: "0", class: "vae-w-plane",
      id: id + "-plane-" + index,
      "aria-label": spec.title + ": latent plane, " + codes.length / 2 +
        " encoded test digits; drag, hover or use the arrow keys to move the point z",
    }, box);
    const row = el("div", { class: "vae-w-row" }, box);
    const image = el("canvas", {
      width: w, height: h, class: "vae-w-digit", role: "img",
      "aria-label": spec.title + ": the image decoded from z",
    }, row);
    const readout = el("p", { class: "vae-w-readout", "aria-live": "polite" }, row);

    // the scatter, drawn once
    const background = document.createElement("canvas");
    background.width = SIZE;
    background.height = SIZE;
    const bg = background.getContext("2d");
    bg.fillStyle = "#ffffff";
    bg.fillRect(0, 0, SIZE, SIZE);
    for (let i = 0; i < codes.length / 2; i++) {
      const p = v.toPixel([codes[2 * i], codes[2 * i + 1]]);
      bg.fillStyle = R.palette[Number(spec.labels[i])];
      bg.globalAlpha = 0.55;
      bg.fillRect(p[0] - 1, p[1] - 1, 2, 2);
    }
    bg.globalAlpha = 1;
    bg.strokeStyle = "#999999";
    const origin = v.toPixel([0, 0]);
    bg.beginPath();
    bg.moveTo(origin[0], 0);
    bg.lineTo(origin[0], SIZE);
    bg.moveTo(0, origin[1]);
    bg.lineTo(SIZE, origin[1]);
    bg.stroke();

    let z = spec.start.slice();
    const decode = (point) => net.run(Float64Array.from(point));
    const show = (point) => {
      z = [point[0], point[1]];
      const ctx = plane.getContext("2d");
      ctx.drawImage(background, 0, 0);
      R.marker(ctx, v.toPixel(z), "#000000", true);
      R.drawImage(image, decode(z), w, h);
      readout.textContent = "z = " + R.format(z);
    };
    R.pointControl(plane, v, () => z, show, true);
    show(z);
    return { decode: decode, show: show, state: () => z.slice(), view: spec.view, size: SIZE };
  }

  R.kinds.plane = function (root, data, R) {
    const wrap = root.querySelector(".vae-w-body").appendChild(document.createElement("div"));
    wrap.className = "vae-w-row"; // the planes side by side where the page is wide enough
    const panels = data.panels.map((spec, i) => panel(wrap, root.id, spec, i, R));
    const legend = el("p", { class: "vae-w-caption", text: "the test digits, by colour: " },
      root.querySelector(".vae-w-body"));
    R.palette.forEach((colour, d) => el("span", {
      style: "color: " + colour + "; font-weight: 700; margin-right: 0.5em", text: String(d),
    }, legend));
    return {
      panels: panels.length,
      decode: (z, i) => Array.from(panels[i || 0].decode(z)),
      setPoint: (i, z) => panels[i].show(z),
      state: () => panels.map((p) => p.state()),
      timeDecode(n, i) {
        const p = panels[i || 0];
        return R.timeIt((k) => p.decode([Math.cos(k), Math.sin(k)]), n);
      },
    };
  };
})(window.vaeWidgetRuntime);
