/* vae_lib widgets: paths between words (vae_lib.widgets.word_path_widget).
 *
 * The recurrent VAE of chapter 8 in the page: a GRU encoder reads each typed word and gives
 * the mean of q(z | x); the slider moves along the straight line between the two means, and the
 * GRU decoder writes the word at that point greedily, letter by letter (the most probable
 * letter each time, as SequenceVAE.greedy_decode). The button decodes a draw from the prior.
 */
(function (R) {
  "use strict";

  const PAD = 0, BOS = 1, EOS = 2;

  const el = R.el; // document.createElement with attributes (runtime.js)

  // torch.nn.GRU's cell, gates in PyTorch's order (reset, update, new): h is updated in place.
  function gruCell(p, x, h, gi, gh) {
    const H = h.length;
    R.linear(p.wih, p.bih, x, gi);
    R.linear(p.whh, p.bhh, h, gh);
    for (let k = 0; k < H; k++) {
      const r = R.sigmoid(gi[k] + gh[k]);
      const u = R.sigmoid(gi[H + k] + gh[H + k]);
      const n = Math.tanh(gi[2 * H + k] + r * gh[2 * H + k]);
      h[k] = (1 - u) * n + u * h[k];
    }
  }

  function gru(t, prefix) {
    const p = {
      wih: t[prefix + ".weight_ih_l0"], whh: t[prefix + ".weight_hh_l0"],
      bih: t[prefix + ".bias_ih_l0"], bhh: t[prefix + ".bias_hh_l0"],
    };
    const H = p.whh.shape[1];
    return { p: p, H: H, gi: new Float64Array(3 * H), gh: new Float64Array(3 * H) };
  }

  function model(t, data) {
    const letters = data.letters;
    const E = t["embedding.weight"].shape[1];
    const J = data.latentDim;
    const V = t["to_logits.weight"].shape[0];
    const enc = gru(t, "encoder");
    const dec = gru(t, "decoder");
    const embed = (token, x) => {
      const e = t["embedding.weight"].data;
      for (let k = 0; k < E; k++) x[k] = e[token * E + k];
    };

    // the mean of q(z | x) of a word (its letters, without the start and end tokens)
    function encode(word) {
      const tokens = [BOS, ...Array.from(word, (ch) => letters.indexOf(ch) + 3), EOS];
      const h = new Float64Array(enc.H);
      const x = new Float64Array(E);
      for (const token of tokens) {
        embed(token, x);
        gruCell(enc.p, x, h, enc.gi, enc.gh);
      }
      const out = R.linear(t["to_posterior.weight"], t["to_posterior.bias"], h,
        new Float64Array(2 * J));
      return out.slice(0, J);
    }

    // greedy decoding from z, as SequenceVAE.greedy_decode and CharVocabulary.decode
    function decode(z) {
      const h = R.linear(t["to_initial_state.weight"], t["to_initial_state.bias"], z,
        new Float64Array(dec.H));
      for (let k = 0; k < h.length; k++) h[k] = Math.tanh(h[k]);
      const x = new Float64Array(E + J);
      for (let j = 0; j < J; j++) x[E + j] = z[j];
      const logits = new Float64Array(V);
      let token = BOS;
      let word = "";
      for (let step = 0; step < data.maxLength; step++) {
        embed(token, x);
        gruCell(dec.p, x, h, dec.gi, dec.gh);
        R.linear(t["to_logits.weight"], t["to_logits.bias"], h, logits);
        let best = -1;
        for (let v = 0; v < V; v++) {
          if (v === PAD || v === BOS) continue;
          if (best < 0 || logits[v] > logits[best]) best = v;
        }
        token = best;
        if (token === EOS) break;
        word += letters[token - 3];
      }
      return word;
    }
    return { encode: encode, decode: decode, J: J };
  }

  R.kinds.words = function (root, data, R) {
    const id = root.id;
    const m = model(R.decodeTensors(data.weights), data);
    const rng = R.generator(data.seed);
    const steps = Math.round(1 / data.step);
    const body = root.querySelector(".vae-w-body");
    const inputs = el("div", { class: "vae-w-row" }, body);
    const fields = ["first", "second"].map((name, i) => {
      const p = el("p", {}, inputs);
      el("label", { for: id + "-" + name, text: name + " word " }, p);
      return el("input", {
        type: "text", id: id + "-" + name, value: data.words[i], size: "14",
        autocomplete: "off", spellcheck: "false", "aria-describedby": id + "-status",
      }, p);
    });
    const sliderRow = el("p", {}, body);
    el("label", { for: id + "-t", text: "from the first word (0) to the second (1) " },
      sliderRow);
    const slider = el("input", {
      type: "range", id: id + "-t", min: "0", max: "1", step: String(data.step), value: "0",
    }, sliderRow);
    const status = el("p", { id: id + "-status", class: "vae-w-status", "aria-live": "polite" },
      body);
    const word = el("p", { class: "vae-w-word", "aria-live": "polite" }, body);
    const path = el("p", { class: "vae-w-path" }, body);
    const readout = el("p", { class: "vae-w-readout" }, body);
    const button = el("button", {
      type: "button", id: id + "-draw", text: "decode a draw from the prior",
    }, body);
    const prior = el("p", { class: "vae-w-word", "aria-live": "polite" }, body);

    let mus = null;
    let state = { first: "", second: "", t: 0, word: "", z: [] };
    const lerp = (t) => mus[0].map((a, j) => (1 - t) * a + t * mus[1][j]);

    function showPoint() {
      const t = Number(slider.value);
      const z = lerp(t);
      const w = m.decode(z);
      state = Object.assign(state, { t: t, word: w, z: Array.from(z) });
      word.textContent = "at t = " + t.toFixed(2) + ": " + (w || "(the empty word)");
      readout.textContent = "z = " + R.format(z, 1);
    }

    function encodeWords() {
      const typed = fields.map((f) => f.value.trim().toLowerCase());
      const bad = typed.find((w) => !w || !Array.from(w).every((ch) => data.letters.includes(ch)));
      if (bad !== undefined) {
        status.textContent = "type two words of the letters a to z (\u201c" + bad +
          "\u201d is not one)";
        return;
      }
      status.textContent = "";
      mus = typed.map(m.encode);
      state.first = typed[0];
      state.second = typed[1];
      const seen = [];
      for (let k = 0; k <= steps; k++) {
        const w = m.decode(lerp(k / steps));
        if (seen[seen.length - 1] !== w) seen.push(w);
      }
      path.textContent = "along the path: " + seen.join(" \u2192 ");
      showPoint();
    }

    fields.forEach((f) => f.addEventListener("input", encodeWords));
    slider.addEventListener("input", () => { if (mus) showPoint(); });
    button.addEventListener("click", () => {
      const z = Array.from({ length: m.J }, () => rng.normal());
      const w = m.decode(z);
      state.prior = { z: z, word: w };
      prior.textContent = "a draw from the prior: " + (w || "(the empty word)");
    });
    encodeWords();

    return {
      encode: (w) => Array.from(m.encode(w)),
      decode: (z) => m.decode(Float64Array.from(z)),
      state: () => JSON.parse(JSON.stringify(state)),
      timeDecode: (n) => R.timeIt((k) => m.decode(lerp((k % (steps + 1)) / steps)), n),
    };
  };
})(window.vaeWidgetRuntime);
