/* vae_lib widgets: the gap of chapter 9 (vae_lib.widgets.gap_widget).
 *
 * For the test image chosen, the plane is shaded by the exact posterior p(z|x) (computed in
 * Python by quadrature) and carries the 1- and 2-standard-deviation ellipses of a diagonal
 * Gaussian q. Drag q's centre (or use the arrow keys, shift for five steps), move the sliders of
 * log sigma_1 and log sigma_2, or set q to the encoder's q(z|x) or to the best Gaussian q*. The
 * ELBO is computed here, on S fixed standard-normal draws eps_s shared by every q:
 *   L[q] = mean_s [log p(x | z_s) + log N(z_s; 0, I) - log q(z_s)],  z_s = mu + sigma eps_s,
 * running the decoder on the S codes; the gap log p(x) - L[q] is KL(q || p(z|x)) up to Monte
 * Carlo error, drawn on a logarithmic bar beside the gaps of the encoder's q and of q*.
 */
(function (R) {
  "use strict";

  const SIZE = 300; // pixels of the plane
  const BAR_W = 300;
  const BAR_H = 56;
  const PAD = 14; // the bar's margins, room for the labels
  const BAR_MIN = 0.01; // the bar's scale, in nats: logarithmic from 0.01 to 1000
  const BAR_MAX = 1000;
  const LOG_2PI = Math.log(2 * Math.PI);
  const RED = "#d62728";

  const el = R.el; // document.createElement with attributes (runtime.js)

  // The decoder run on S codes at once, Z (S x inputSize, row-major) -> logits (S x outputs).
  // The same sums as R.mlp in float64, arranged for speed: the weights are kept in float32
  // (exact: they are float16 or float32 numbers), and each pass over a weight row serves all
  // S codes, four rows at a time.
  function batchedMlp(tensors, spec) {
    const act = R.activations[spec.activation];
    if (!act) throw new Error("unknown activation " + spec.activation);
    const layers = spec.layers.map(([w, b]) => ({
      nOut: tensors[w].shape[0],
      nIn: tensors[w].shape[1],
      w: Float32Array.from(tensors[w].data),
      b: tensors[b].data,
    }));
    let buffers = null;
    let size = 0;
    return {
      inputSize: layers[0].nIn,
      outputSize: layers[layers.length - 1].nOut,
      run(Z, S) {
        if (S !== size) {
          buffers = layers.map((l) => new Float64Array(S * l.nOut));
          size = S;
        }
        let h = Z;
        layers.forEach((l, li) => {
          const { nOut, nIn, w, b } = l;
          const y = buffers[li];
          const last = li === layers.length - 1;
          let i = 0;
          for (; i + 4 <= nOut; i += 4) {
            const r0 = i * nIn;
            const r1 = r0 + nIn;
            const r2 = r1 + nIn;
            const r3 = r2 + nIn;
            let s = 0;
            for (; s + 2 <= S; s += 2) {
              const p = s * nIn;
              const q = p + nIn;
              let a0 = b[i];
              let a1 = b[i + 1];
              let a2 = b[i + 2];
              let a3 = b[i + 3];
              let c0 = a0;
              let c1 = a1;
              let c2 = a2;
              let c3 = a3;
              for (let j = 0; j < nIn; j++) {
                const hj = h[p + j];
                const gj = h[q + j];
                const w0 = w[r0 + j];
                const w1 = w[r1 + j];
                const w2 = w[r2 + j];
                const w3 = w[r3 + j];
                a0 += w0 * hj;
                a1 += w1 * hj;
                a2 += w2 * hj;
                a3 += w3 * hj;
                c0 += w0 * gj;
                c1 += w1 * gj;
                c2 += w2 * gj;
                c3 += w3 * gj;
              }
              const o = s * nOut + i;
              const u = o + nOut;
              y[o] = last ? a0 : act(a0);
              y[o + 1] = last ? a1 : act(a1);
              y[o + 2] = last ? a2 : act(a2);
              y[o + 3] = last ? a3 : act(a3);
              y[u] = last ? c0 : act(c0);
              y[u + 1] = last ? c1 : act(c1);
              y[u + 2] = last ? c2 : act(c2);
              y[u + 3] = last ? c3 : act(c3);
            }
            for (; s < S; s++) {
              const off = s * nIn;
              let a0 = b[i];
              let a1 = b[i + 1];
              let a2 = b[i + 2];
              let a3 = b[i + 3];
              for (let j = 0; j < nIn; j++) {
                const hj = h[off + j];
                a0 += w[r0 + j] * hj;
                a1 += w[r1 + j] * hj;
                a2 += w[r2 + j] * hj;
                a3 += w[r3 + j] * hj;
              }
              const o = s * nOut + i;
              y[o] = last ? a0 : act(a0);
              y[o + 1] = last ? a1 : act(a1);
              y[o + 2] = last ? a2 : act(a2);
              y[o + 3] = last ? a3 : act(a3);
            }
          }
          for (; i < nOut; i++) {
            const row = i * nIn;
            for (let s = 0; s < S; s++) {
              const off = s * nIn;
              let acc = b[i];
              for (let j = 0; j < nIn; j++) acc += w[row + j] * h[off + j];
              y[s * nOut + i] = last ? acc : act(acc);
            }
          }
          h = y;
        });
        return h;
      },
    };
  }

  // log p(x | logits) of Bernoulli pixels: sum_j x_j a_j - softplus(a_j), as PyTorch's
  // vae_lib.bernoulli_log_likelihood.
  function bernoulli(x, logits, offset) {
    let total = 0;
    for (let j = 0; j < x.length; j++) {
      const a = logits[offset + j];
      total += x[j] * a - (Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))));
    }
    return total;
  }

  // The posterior's shading: p(z|x) relative to its peak, white to black, on a small canvas
  // (one pixel per node) that the plane draws scaled up and smoothed.
  function shading(spec, n, R) {
    const logd = R.decodeTensors({ tensors: { d: spec.logDensity } }).d.data;
    let peak = -Infinity;
    for (let i = 0; i < logd.length; i++) peak = Math.max(peak, logd[i]);
    const canvas = document.createElement("canvas");
    canvas.width = n;
    canvas.height = n;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const v = Math.round(255 * (1 - 0.85 * Math.exp(logd[i] - peak)));
      img.data[4 * i] = v;
      img.data[4 * i + 1] = v;
      img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  const fixed = (v, d) => R.format([v], d).slice(1, -1); // one number, a true minus sign

  R.kinds.gap = function (root, data, R) {
    const id = root.id;
    const net = batchedMlp(R.decodeTensors(data.weights), data.mlp);
    const [h, w] = data.imageShape;
    const eps = data.eps;
    const S = eps.length;
    const images = data.images.map((spec) => ({
      spec: spec,
      x: R.decodeTensors({ tensors: { x: spec.pixels } }).x.data,
      background: null, // drawn when first shown
    }));
    const Z = new Float64Array(S * 2);

    // L[q] of image b for q = N(mu, diag exp(2 logSigma)), its standard error, the log-weights
    function elbo(b, mu, logSigma) {
      const x = images[b].x;
      const sigma = [Math.exp(logSigma[0]), Math.exp(logSigma[1])];
      for (let s = 0; s < S; s++) {
        Z[2 * s] = mu[0] + sigma[0] * eps[s][0];
        Z[2 * s + 1] = mu[1] + sigma[1] * eps[s][1];
      }
      const logits = net.run(Z, S);
      const P = net.outputSize;
      const weights = new Array(S);
      let mean = 0;
      for (let s = 0; s < S; s++) {
        const z1 = Z[2 * s];
        const z2 = Z[2 * s + 1];
        const e1 = eps[s][0];
        const e2 = eps[s][1];
        const logPrior = -LOG_2PI - 0.5 * (z1 * z1 + z2 * z2);
        const logQ = -LOG_2PI - logSigma[0] - logSigma[1] - 0.5 * (e1 * e1 + e2 * e2);
        weights[s] = bernoulli(x, logits, s * P) + logPrior - logQ;
        mean += weights[s] / S;
      }
      let ss = 0;
      for (let s = 0; s < S; s++) ss += (weights[s] - mean) * (weights[s] - mean);
      return { elbo: mean, se: Math.sqrt(ss / (S - 1) / S), weights: weights };
    }

    // -- the page ------------------------------------------------------------------------------
    const body = root.querySelector(".vae-w-body");
    const row = el("div", { class: "vae-w-row" }, body);
    const left = el("figure", { class: "vae-w-panel" }, row);
    el("figcaption", { text: "the image x" }, left);
    const top = el("p", {}, left);
    el("label", { for: id + "-image", text: "test image" }, top);
    const select = el("select", { id: id + "-image" }, top);
    images.forEach((_, b) => el("option", { value: String(b), text: String(b) }, select));
    const digit = el("canvas", {
      width: w, height: h, class: "vae-w-digit", role: "img", "aria-label": "the test image x",
    }, left);
    const middle = el("figure", { class: "vae-w-panel" }, row);
    el("figcaption", { text: "p(z|x) (grey) and q (red)" }, middle);
    const plane = el("canvas", {
      width: SIZE, height: SIZE, tabindex: "0", id: id + "-plane", class: "vae-w-plane",
      "aria-label": "the latent plane, shaded by the exact posterior p(z|x), with the 1- and " +
        "2-standard-deviation ellipses of q: drag or use the arrow keys to move q's mean",
    }, middle);
    const extent = el("p", { class: "vae-w-readout" }, middle);
    const controls = el("div", { class: "vae-w-controls", style: "max-width: 300px" }, row);
    el("p", { text: "q = N(mean, diag(\u03c3\u2081\u00b2, \u03c3\u2082\u00b2))" }, controls);
    const sliders = [0, 1].map((d) => {
      const p = el("p", {}, controls);
      el("label", { for: id + "-s" + (d + 1), text: "log \u03c3" + "\u2081\u2082"[d] }, p);
      const input = el("input", {
        type: "range", id: id + "-s" + (d + 1), min: data.logSigmaRange[0],
        max: data.logSigmaRange[1], step: data.logSigmaStep, value: 0, style: "width: 10rem",
      }, p);
      const out = el("output", { for: id + "-s" + (d + 1) }, p);
      return { input: input, out: out };
    });
    const buttons = el("p", {}, controls);
    const encoderButton = el("button", {
      type: "button", id: id + "-encoder", text: "encoder's q",
    }, buttons);
    const bestButton = el("button", {
      type: "button", id: id + "-best", text: "best Gaussian q*",
    }, buttons);
    const bar = el("canvas", {
      width: BAR_W, height: BAR_H, class: "vae-w-bar", role: "img",
      style: "max-width: 100%",
    }, controls);
    const readout = el("p", {
      class: "vae-w-readout", "aria-live": "polite", style: "white-space: pre-wrap",
    }, body);

    // -- state and drawing ---------------------------------------------------------------------
    let b = 0;
    let mu = [0, 0];
    let logSigma = [0, 0];
    let current = null; // the last elbo(...) result
    let refs = null; // the gaps of the encoder's q and of q* for image b (same draws)
    const v = {}; // the plane's view, replaced with each image (pointControl reads it live)

    const barX = (gap) => {
      const t = Math.log(Math.min(Math.max(gap, BAR_MIN), BAR_MAX) / BAR_MIN);
      return PAD + ((BAR_W - 2 * PAD) * t) / Math.log(BAR_MAX / BAR_MIN);
    };

    function drawBar(gap) {
      const ctx = bar.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, BAR_W, BAR_H);
      ctx.fillStyle = RED;
      ctx.fillRect(PAD, 16, Math.max(1, barX(gap) - PAD), 12);
      ctx.strokeStyle = "#555555";
      ctx.fillStyle = "#333333";
      ctx.font = "10px sans-serif";
      ctx.textAlign = "center";
      ctx.beginPath();
      ctx.moveTo(PAD, 28.5);
      ctx.lineTo(BAR_W - PAD, 28.5);
      for (let e = -2; e <= 3; e++) {
        const px = Math.round(barX(Math.pow(10, e))) + 0.5;
        ctx.moveTo(px, 28);
        ctx.lineTo(px, 32);
        ctx.fillText(String(Math.pow(10, e)), px, 43);
      }
      ctx.stroke();
      ctx.fillText("gap in nats (logarithmic scale)", BAR_W / 2, 54);
      // the gaps of the encoder's q and of q*, marked above the bar
      ctx.lineWidth = 2;
      // the larger gap's label to the right of its mark, the smaller's to the left
      const order = refs.encoder >= refs.best ? ["left", "right"] : ["right", "left"];
      [["q", refs.encoder, order[0]], ["q*", refs.best, order[1]]].forEach(([name, g, a]) => {
        const px = barX(g);
        ctx.textAlign = a;
        ctx.beginPath();
        ctx.moveTo(px, 13);
        ctx.lineTo(px, 30);
        ctx.strokeStyle = "#000000";
        ctx.stroke();
        ctx.fillStyle = "#000000";
        ctx.fillText(name, px + (a === "left" ? 2 : -2), 10);
      });
      ctx.textAlign = "center";
      ctx.lineWidth = 1;
      bar.setAttribute(
        "aria-label",
        "the gap on a logarithmic scale: " + gap.toFixed(2) + " nats; the encoder's q " +
          refs.encoder.toFixed(2) + ", q* " + refs.best.toFixed(2),
      );
    }

    function drawPlane() {
      const ctx = plane.getContext("2d");
      const image = images[b];
      if (!image.background) image.background = shading(image.spec, data.resolution, R);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(image.background, 0, 0, SIZE, SIZE);
      const c = v.toPixel(mu);
      const scale = SIZE / (v.hi[0] - v.lo[0]);
      ctx.strokeStyle = RED;
      ctx.lineWidth = 2;
      [1, 2].forEach((k) => {
        ctx.setLineDash(k === 1 ? [] : [5, 4]);
        ctx.beginPath();
        ctx.ellipse(c[0], c[1], k * Math.exp(logSigma[0]) * scale,
          k * Math.exp(logSigma[1]) * scale, 0, 0, 2 * Math.PI);
        ctx.stroke();
      });
      ctx.setLineDash([]);
      R.marker(ctx, c, RED, true);
    }

    const reference = (name) => {
      const [g, se] = images[b].spec.referenceGap[name];
      return fixed(g, 2) + " \u00b1 " + se.toFixed(2);
    };

    function show() {
      current = elbo(b, mu, logSigma);
      const logPx = images[b].spec.logPx;
      const gap = logPx - current.elbo;
      drawPlane();
      sliders.forEach((s, d) => {
        s.input.value = logSigma[d];
        s.out.textContent = fixed(logSigma[d], 2);
      });
      readout.textContent =
        "log p(x) = " + fixed(logPx, 2) + " nats (exact, by quadrature)\n" +
        "L[q]     = " + fixed(current.elbo, 2) + " \u00b1 " + current.se.toFixed(2) +
        " nats (mean over " + S + " fixed draws)\n" +
        "gap = log p(x) \u2212 L[q] = " + fixed(gap, 2) + " nats \u2248 KL(q \u2016 p(z|x))" +
        (gap < 0 ? ",\n  below 0 by Monte Carlo error" : "") + "\n" +
        "q: mean " + R.format(mu, 3) + ", \u03c3 " +
        R.format([Math.exp(logSigma[0]), Math.exp(logSigma[1])], 3) + "\n" +
        "gaps on these draws: encoder's q " + fixed(refs.encoder, 2) + ", q* " +
        fixed(refs.best, 2) + " (the approximation gap)\n" +
        "gaps on " + data.nReference + " fresh draws: encoder's q " + reference("encoder") +
        ", q* " + reference("best");
      drawBar(gap);
    }

    function setQ(m, ls) {
      mu = [m[0], m[1]];
      logSigma = [ls[0], ls[1]];
      show();
    }

    function selectImage(k) {
      b = k;
      const spec = images[b].spec;
      Object.assign(v, R.view(spec.lo, spec.hi, SIZE));
      select.value = String(b);
      R.drawImage(digit, images[b].x, w, h);
      const gapOf = (q) => spec.logPx - elbo(b, q.mu, q.logSigma).elbo;
      refs = { encoder: gapOf(spec.encoder), best: gapOf(spec.best) };
      extent.textContent =
        "z\u2081: " + fixed(spec.lo[0], 2) + " \u2026 " + fixed(spec.hi[0], 2) +
        "; z\u2082: " + fixed(spec.lo[1], 2) + " \u2026 " + fixed(spec.hi[1], 2);
      setQ(spec.encoder.mu, spec.encoder.logSigma);
    }

    // -- controls ------------------------------------------------------------------------------
    select.addEventListener("change", () => selectImage(Number(select.value)));
    R.pointControl(plane, v, () => mu, (z) => setQ(z, logSigma), false);
    sliders.forEach((s, d) => s.input.addEventListener("input", () => {
      const next = logSigma.slice();
      next[d] = Number(s.input.value);
      setQ(mu, next);
    }));
    encoderButton.addEventListener("click", () => {
      const q = images[b].spec.encoder;
      setQ(q.mu, q.logSigma);
    });
    bestButton.addEventListener("click", () => {
      const q = images[b].spec.best;
      setQ(q.mu, q.logSigma);
    });
    selectImage(0);

    return {
      images: images.length,
      draws: S,
      elbo: (k, m, ls) => {
        const r = elbo(k, m, ls);
        return { elbo: r.elbo, se: r.se, weights: r.weights };
      },
      logPx: (k) => images[k].spec.logPx,
      decode: (z) => Array.from(net.run(Float64Array.from(z), 1)),
      select: selectImage,
      setQ: setQ,
      references: () => Object.assign({}, refs),
      view: () => ({ lo: v.lo.slice(), hi: v.hi.slice(), size: SIZE, step: v.step }),
      state: () => ({
        image: b, mu: mu.slice(), logSigma: logSigma.slice(), elbo: current.elbo,
        se: current.se, logPx: images[b].spec.logPx, gap: images[b].spec.logPx - current.elbo,
      }),
      // one decoder pass, as the other widgets time theirs
      timeDecode: (n) => R.timeIt((k) => net.run(Float64Array.of(Math.cos(k), Math.sin(k)), 1), n),
      // one live update of the numbers: the ELBO of a q near the current one (S decoder passes)
      timeUpdate(n) {
        const m = mu.slice();
        return R.timeIt((k) => elbo(b, [m[0] + 1e-3 * Math.cos(k), m[1]], logSigma), n, 1);
      },
    };
  };
})(window.vaeWidgetRuntime);
