/* vae_lib widgets: the shared runtime (vae_lib/js/runtime.js).
 *
 * Plain JavaScript, no library: the weights arrive inline as base64 (vae_lib.widgets), the
 * forward passes are a few loops over Float64Arrays, and the drawing is a <canvas>. Every
 * widget's HTML inlines this file before its own, so a page needs nothing else: no server, no
 * request for a file, no CDN. Defining it twice on one page is harmless (the later copy is the
 * same).
 */
(function (root) {
  "use strict";

  // -- weights: base64 -> Float64Array -----------------------------------------------------
  function base64Bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // IEEE 754 half precision (binary16) to a number, exactly.
  function halfToNumber(h) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) return sign * fraction * Math.pow(2, -24);
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
  }

  // One tensor of the payload ({shape, dtype, data}) as {shape, data: Float64Array}.
  function decodeTensor(spec) {
    const bytes = base64Bytes(spec.data);
    const view = new DataView(bytes.buffer);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    if (spec.dtype === "float16") {
      for (let i = 0; i < n; i++) data[i] = halfToNumber(view.getUint16(2 * i, true));
    } else if (spec.dtype === "float32") {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(4 * i, true);
    } else {
      throw new Error("unknown dtype " + spec.dtype);
    }
    return { shape: spec.shape, data: data };
  }

  function decodeTensors(payload) {
    const out = {};
    for (const key of Object.keys(payload.tensors)) out[key] = decodeTensor(payload.tensors[key]);
    return out;
  }

  // -- layers ----------------------------------------------------------------------------------
  // y = W x + b for W (n_out, n_in) row-major, as torch.nn.Linear.
  function linear(W, b, x, y) {
    const nOut = W.shape[0];
    const nIn = W.shape[1];
    const w = W.data;
    for (let i = 0; i < nOut; i++) {
      let s = b ? b.data[i] : 0;
      const row = i * nIn;
      for (let j = 0; j < nIn; j++) s += w[row + j] * x[j];
      y[i] = s;
    }
    return y;
  }

  const activations = {
    relu: (v) => (v > 0 ? v : 0),
    elu: (v) => (v > 0 ? v : Math.exp(v) - 1),
    tanh: Math.tanh,
    softplus: (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))),
    identity: (v) => v,
  };

  function sigmoid(v) {
    return 1 / (1 + Math.exp(-v));
  }

  // An MLP from the payload's description {layers: [[weight, bias], ...], activation, output}:
  // the activation between layers, `output` ("sigmoid" or "identity") after the last.
  function mlp(tensors, spec) {
    const layers = spec.layers.map(([w, b]) => [tensors[w], tensors[b]]);
    const act = activations[spec.activation];
    const out = spec.output === "sigmoid" ? sigmoid : activations.identity;
    if (!act) throw new Error("unknown activation " + spec.activation);
    const buffers = layers.map(([W]) => new Float64Array(W.shape[0]));
    const inputSize = layers[0][0].shape[1];
    return {
      inputSize: inputSize,
      outputSize: layers[layers.length - 1][0].shape[0],
      run(x) {
        let h = x;
        layers.forEach(([W, b], i) => {
          const y = linear(W, b, h, buffers[i]);
          const f = i < layers.length - 1 ? act : out;
          for (let k = 0; k < y.length; k++) y[k] = f(y[k]);
          h = y;
        });
        return Float64Array.from(h);
      },
    };
  }

  // -- drawing -----------------------------------------------------------------------------
  // Pixel probabilities (28 x 28) as dark ink on white, on a canvas of the image's size (CSS
  // scales it up, pixelated).
  function drawImage(canvas, probs, width, height) {
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(width, height);
    for (let i = 0; i < width * height; i++) {
      const v = Math.round(255 * (1 - probs[i]));
      img.data[4 * i] = v;
      img.data[4 * i + 1] = v;
      img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // The tab10 palette, as the book's scatter plots colour digits.
  const palette = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ];

  // A square view of the plane: [lo, hi] on both axes, drawn on a canvas of `size` pixels.
  function view(lo, hi, size) {
    const scale = size / (hi[0] - lo[0]);
    const scaleY = size / (hi[1] - lo[1]);
    return {
      lo: lo, hi: hi, size: size,
      toPixel: (z) => [(z[0] - lo[0]) * scale, (hi[1] - z[1]) * scaleY],
      toPoint: (px, py) => [lo[0] + px / scale, hi[1] - py / scaleY],
      step: (hi[0] - lo[0]) / 50,
    };
  }

  // Pointer (mouse, pen, touch) and arrow keys move a point on `canvas` within view `v`;
  // `onMove(z)` is called with the new point. Hover moves it too when `hover` is true.
  function pointControl(canvas, v, getPoint, onMove, hover) {
    let dragging = false;
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      const px = ((e.clientX - r.left) * v.size) / r.width;
      const py = ((e.clientY - r.top) * v.size) / r.height;
      return v.toPoint(Math.min(Math.max(px, 0), v.size), Math.min(Math.max(py, 0), v.size));
    };
    canvas.addEventListener("pointerdown", (e) => {
      dragging = true;
      canvas.setPointerCapture(e.pointerId);
      canvas.focus();
      onMove(at(e));
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (dragging || (hover && e.pointerType === "mouse")) onMove(at(e));
    });
    const stop = () => { dragging = false; };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("keydown", (e) => {
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      const m = moves[e.key];
      if (!m) return;
      const step = v.step * (e.shiftKey ? 5 : 1);
      const z = getPoint();
      const next = [
        Math.min(Math.max(z[0] + m[0] * step, v.lo[0]), v.hi[0]),
        Math.min(Math.max(z[1] + m[1] * step, v.lo[1]), v.hi[1]),
      ];
      onMove(next);
      e.preventDefault();
    });
  }

  function marker(ctx, p, color, filled) {
    ctx.beginPath();
    ctx.arc(p[0], p[1], 6, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    if (filled) {
      ctx.fillStyle = color;
      ctx.fill();
      ctx.strokeStyle = "#ffffff";
    }
    ctx.stroke();
  }

  // -- numbers -------------------------------------------------------------------------------
  // A seeded generator (mulberry32) and standard normal draws (Box-Muller): the "new z" buttons
  // draw the same sequence on every page load.
  function generator(seed) {
    let a = seed >>> 0;
    const uniform = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return {
      uniform: uniform,
      normal() {
        const u = 1 - uniform();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
      },
    };
  }

  // "(0.12, \u22121.30)": numbers to `digits` decimals (2 by default), a true minus sign, and no
  // sign on a number that rounds to zero.
  function format(values, digits) {
    const d = digits === undefined ? 2 : digits;
    const one = (v) => {
      const text = v.toFixed(d);
      return Number(text) === 0 ? (0).toFixed(d) : text.replace("-", "\u2212");
    };
    return "(" + Array.from(values, one).join(", ") + ")";
  }

  // The median of n timings of fn, in milliseconds, and every timing. Each timing is the mean of
  // `repeat` calls (10 by default), since browsers round performance.now() to 0.1 ms or more.
  function timeIt(fn, n, repeat) {
    const times = [];
    const m = repeat || 10;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      for (let k = 0; k < m; k++) fn(i * m + k);
      times.push((performance.now() - t0) / m);
    }
    const sorted = times.slice().sort((a, b) => a - b);
    const mid = Math.floor(n / 2);
    const median = n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { median: median, times: times };
  }

  // A DOM element: el("input", {type: "range", "aria-label": "z1"}, parent); "text" sets its
  // text content, every other key an attribute.
  function element(tag, attrs, parent) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  // -- widgets -------------------------------------------------------------------------------
  const kinds = (root.vaeWidgetRuntime && root.vaeWidgetRuntime.kinds) || {};
  root.vaeWidgets = root.vaeWidgets || {};

  // Build widget `kind` in the element `id` from its JSON payload (a script element inside it),
  // and register its test hook as window.vaeWidgets[id].
  function mount(kind, id) {
    const el = document.getElementById(id);
    const data = JSON.parse(el.querySelector("script[type='application/json']").textContent);
    const hook = kinds[kind](el, data, api);
    hook.kind = kind;
    hook.readyAt = performance.now();
    hook.ready = true;
    root.vaeWidgets[id] = hook;
    el.setAttribute("data-ready", "true");
    return hook;
  }

  const api = {
    decodeTensors, linear, mlp, sigmoid, activations, drawImage, palette, view, pointControl,
    marker, generator, format, timeIt, el: element,
  };
  root.vaeWidgetRuntime = Object.assign({ kinds: kinds, mount: mount }, api);
})(window);
