"""Store the shipped weights of the zoo entries whose ``storage`` is ``"float16"`` in float16,
and check what it costs: each model is loaded from its float32 file, saved again in float16,
loaded back into float32, and its quick metric recomputed; the manifest gets the new sha256,
size and quick metric, and a ``storage`` note with the float32 value beside it. A change above
0.05 nats (0.001 for an accuracy) stops the script before anything is written.

Run once from the repository root:  python benchmarks/store_half.py [NAME ...]
"""

from __future__ import annotations

import sys

import torch

from vae_lib import zoo

TOLERANCE = {"classifier": 0.001, "semi_supervised": 0.001}


def main() -> None:
    names = sys.argv[1:] or [n for n, e in zoo.ENTRIES.items() if e.storage == "float16"]
    manifest = zoo.read_manifest()
    rows = []
    for name in names:
        e = zoo.entry(name)
        info = manifest["models"][name]
        path = zoo.WEIGHTS_DIR / info["file"]
        state = torch.load(path, weights_only=True)
        if any(v.dtype == torch.float16 for v in state.values()) or e.storage != "float16":
            print(f"{name}: stored in {e.storage} already, or float32 by its entry")
            continue
        model, _ = zoo.load(name, "cpu")
        before = zoo.quick_metric(name, model)
        zoo._save_weights(model, path, e.storage)
        reloaded = e.build()
        zoo._load_weights(path, zoo._sha256(path), reloaded)
        after = zoo.quick_metric(name, reloaded)
        change = after - before
        limit = TOLERANCE.get(e.quick, 0.05)
        rows.append((name, before, after, change, info["bytes"], path.stat().st_size))
        if abs(change) > limit:
            torch.save(state, path)  # put the float32 file back
            raise SystemExit(f"{name}: quick metric moved by {change:+.4f} (> {limit}); kept")
        info.update(sha256=zoo._sha256(path), bytes=path.stat().st_size)
        info["metrics"]["quick"]["value"] = after
        info["storage"] = {
            "dtype": e.storage,
            "quick_float32": before,
            "quick_change": change,
        }
        zoo.write_manifest_entry(name, info)
        print(
            f"{name:34s} {before:10.4f} -> {after:10.4f} ({change:+.5f}); "
            f"{info['bytes'] / 1e6:.2f} MB",
            flush=True,
        )
    if rows:
        worst = max(rows, key=lambda r: abs(r[3]))
        print(f"largest change: {worst[0]} {worst[3]:+.5f}")


if __name__ == "__main__":
    main()
