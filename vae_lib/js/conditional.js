/* vae_lib widgets: a class-conditional VAE (vae_lib.widgets.conditional_widget).
 *
 * Choose a digit and move one slider per latent dimension: the decoder writes the digit with
 * that code z, and the row below writes every digit with the same z (the same style). The
 * button draws a new z from the prior N(0, I).
 */
(function (R) {
  "use strict";

  const el = R.el; // document.createElement with attributes (runtime.js)

  R.kinds.conditional = function (root, data, R) {
    const id = root.id;
    const tensors = R.decodeTensors(data.weights);
    const net = R.mlp(tensors, data.mlp);
    const J = data.latentDim;
    const C = data.classes;
    const [h, w] = data.imageShape;
    const rng = R.generator(data.seed);
    let z = data.start.slice();
    let digit = data.digit;

    const decode = (code, c) => {
      const x = new Float64Array(J + C);
      for (let j = 0; j < J; j++) x[j] = code[j];
      x[J + c] = 1; // the one-hot label after z, as ConditionalVAE.decode concatenates them
      return net.run(x);
    };

    const body = root.querySelector(".vae-w-body");
    const top = el("div", { class: "vae-w-row" }, body);
    const big = el("canvas", {
      width: w, height: h, class: "vae-w-digit vae-w-big", role: "img",
      "aria-label": "the chosen digit decoded from z",
    }, top);
    const controls = el("div", { class: "vae-w-controls" }, top);
    const pick = el("p", {}, controls);
    el("label", { for: id + "-digit", text: "digit " }, pick);
    const select = el("select", { id: id + "-digit" }, pick);
    for (let c = 0; c < C; c++) el("option", { value: String(c), text: String(c) }, select);
    select.value = String(digit);
    const sliders = [];
    for (let j = 0; j < J; j++) {
      const p = el("p", {}, controls);
      el("label", { for: id + "-z" + j, text: "z" + (j + 1) + " " }, p);
      sliders.push(el("input", {
        type: "range", id: id + "-z" + j, min: String(-data.range), max: String(data.range),
        step: String(data.step), value: String(z[j]),
      }, p));
    }
    const button = el("button", { type: "button", id: id + "-draw", text: "draw z from the prior" },
      controls);
    const readout = el("p", { class: "vae-w-readout", "aria-live": "polite" }, controls);
    el("p", { class: "vae-w-caption", text: "the same z written as every digit:" }, body);
    const row = el("div", { class: "vae-w-row" }, body);
    const all = [];
    for (let c = 0; c < C; c++) {
      all.push(el("canvas", {
        width: w, height: h, class: "vae-w-digit vae-w-small", role: "img",
        "aria-label": "digit " + c + " with the same z",
      }, row));
    }

    const show = () => {
      for (let c = 0; c < C; c++) {
        const probs = decode(z, c);
        R.drawImage(all[c], probs, w, h);
        if (c === digit) R.drawImage(big, probs, w, h);
      }
      readout.textContent = "digit " + digit + ", z = " + R.format(z);
    };
    select.addEventListener("change", () => { digit = Number(select.value); show(); });
    sliders.forEach((s, j) => s.addEventListener("input", () => {
      z[j] = Number(s.value);
      show();
    }));
    button.addEventListener("click", () => {
      for (let j = 0; j < J; j++) {
        // a draw from N(0, 1), kept inside the sliders' range and on their grid
        const v = Math.min(Math.max(rng.normal(), -data.range), data.range);
        sliders[j].value = String(v);
        z[j] = Number(sliders[j].value);
      }
      show();
    });
    show();

    return {
      decode: (code, c) => Array.from(decode(code, c)),
      state: () => ({ z: z.slice(), digit: digit }),
      timeDecode: (n) => R.timeIt((k) => decode(z, k % C), n),
    };
  };
})(window.vaeWidgetRuntime);
