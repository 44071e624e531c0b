/* vae_lib widgets: the ring map of chapter 1 (vae_lib.widgets.ring_widget).
 *
 * Drag the point z in the left plane (or use the arrow keys, shift for five steps): the right
 * plane shows x = g(z) = z/10 + z/|z| on the ring, shaded by the exact density of the
 * change-of-variables formula, p_x(x) = p_z(g^-1(x)) |det J| with |det J| = 10 r / s
 * (s = |x|, r = 10 (s - 1)); the hollow marker is the trained ring VAE's decoder f(z).
 */
(function (R) {
  "use strict";

  const SIZE = 260;

  const el = R.el; // document.createElement with attributes (runtime.js)

  function ringMap(z) {
    const r = Math.hypot(z[0], z[1]);
    return [z[0] / 10 + z[0] / r, z[1] / 10 + z[1] / r];
  }

  // p_x(x) by the change-of-variables formula, and its two factors
  function density(x) {
    const s = Math.hypot(x[0], x[1]);
    if (!(s > 1)) return { pz: 0, det: 0, px: 0 };
    const r = 10 * (s - 1);
    const pz = Math.exp(-0.5 * r * r) / (2 * Math.PI);
    const det = (10 * r) / s;
    return { pz: pz, det: det, px: pz * det };
  }

  function shade(canvas, v, f, vmax) {
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(SIZE, SIZE);
    for (let py = 0; py < SIZE; py++) {
      for (let px = 0; px < SIZE; px++) {
        const value = Math.min(1, f(v.toPoint(px + 0.5, py + 0.5)) / vmax);
        const k = 4 * (py * SIZE + px);
        // white to the book's blue
        img.data[k] = Math.round(255 - value * (255 - 31));
        img.data[k + 1] = Math.round(255 - value * (255 - 119));
        img.data[k + 2] = Math.round(255 - value * (255 - 180));
        img.data[k + 3] = 255;
      }
    }
    const bg = document.createElement("canvas");
    bg.width = SIZE;
    bg.height = SIZE;
    bg.getContext("2d").putImageData(img, 0, 0);
    return bg;
  }

  R.kinds.ring = function (root, data, R) {
    const id = root.id;
    const net = R.mlp(R.decodeTensors(data.weights), data.mlp);
    const vz = R.view([-data.zExtent, -data.zExtent], [data.zExtent, data.zExtent], SIZE);
    const vx = R.view([-data.xExtent, -data.xExtent], [data.xExtent, data.xExtent], SIZE);
    const body = root.querySelector(".vae-w-body");
    const row = el("div", { class: "vae-w-row" }, body);
    const left = el("figure", { class: "vae-w-panel" }, row);
    el("figcaption", { text: "latent z, shaded by p_z" }, left);
    const zc = el("canvas", {
      width: SIZE, height: SIZE, tabindex: "0", id: id + "-z", class: "vae-w-plane",
      "aria-label": "the latent plane: drag or use the arrow keys to move the point z",
    }, left);
    const right = el("figure", { class: "vae-w-panel" }, row);
    el("figcaption", { text: "x = g(z), shaded by p_x" }, right);
    const xc = el("canvas", {
      width: SIZE, height: SIZE, class: "vae-w-plane", role: "img",
      "aria-label": "the data plane: x = g(z) (filled) and the trained decoder f(z) (hollow)",
    }, right);
    const readout = el("p", { class: "vae-w-readout", "aria-live": "polite" }, body);

    const zBack = shade(zc, vz, (z) => Math.exp(-0.5 * (z[0] * z[0] + z[1] * z[1])), 1);
    const xBack = shade(xc, vx, (x) => density(x).px, data.xShadeMax);
    let z = data.start.slice();

    const decode = (point) => Array.from(net.run(Float64Array.from(point)));
    const update = (point) => {
      const x = ringMap(point);
      return { x: x, d: density(x), f: decode(point) };
    };
    const show = (point) => {
      z = [point[0], point[1]];
      const r = Math.hypot(z[0], z[1]);
      const zx = zc.getContext("2d");
      zx.drawImage(zBack, 0, 0);
      R.marker(zx, vz.toPixel(z), "#000000", true);
      const xx = xc.getContext("2d");
      xx.drawImage(xBack, 0, 0);
      if (r < 1e-9) {
        readout.textContent = "z = " + R.format(z) + ": g is not defined at z = 0";
        return;
      }
      const u = update(z);
      R.marker(xx, vx.toPixel(u.f), "#d95f02", false);
      R.marker(xx, vx.toPixel(u.x), "#000000", true);
      readout.textContent = "z = " + R.format(z) + ", |z| = " + r.toFixed(2) +
        "; x = g(z) = " + R.format(u.x) + ", |x| = " + Math.hypot(u.x[0], u.x[1]).toFixed(3) +
        "; p_x(x) = p_z(z) \u00d7 10r/s = " + u.d.pz.toPrecision(3) + " \u00d7 " +
        u.d.det.toPrecision(3) + " = " + u.d.px.toPrecision(3) +
        "; trained decoder f(z) = " + R.format(u.f);
    };
    R.pointControl(zc, vz, () => z, show, false);
    show(z);

    return {
      map: ringMap,
      density: (x) => density(x).px,
      decode: decode,
      state: () => z.slice(),
      setPoint: show,
      timeDecode: (n) => R.timeIt((k) => update([Math.cos(k) + 0.1, Math.sin(k)]), n),
    };
  };
})(window.vaeWidgetRuntime);
