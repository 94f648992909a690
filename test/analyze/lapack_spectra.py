"""Singular values of every 2-D ΔW = tuned − base by LAPACK (torch.linalg.svdvals in float64), the truth analyze is held to.

    python lapack_spectra.py BASE_DIR TUNED_DIR [NAME_REGEX]

ΔW is formed in float32 from the stored tensors, as deltarank forms it, then widened to float64.
Prints one JSON line: {name: {"s": [...], "frob": ‖ΔW‖_F²}}.
"""
import json
import os
import re
import sys

import torch
from safetensors import safe_open


def tensors(folder):
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), framework="pt") as h:
                for k in h.keys():
                    out[k] = h.get_tensor(k)
    return out


base, tuned = tensors(sys.argv[1]), tensors(sys.argv[2])
pattern = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
torch.set_num_threads(1)
result = {}
for name, t in tuned.items():
    if t.dim() != 2 or (pattern and not pattern.search(name)):
        continue
    d = (t.float() - base[name].float()).double()
    result[name] = {"s": torch.linalg.svdvals(d).tolist(), "frob": float((d * d).sum())}
print(json.dumps(result))
