"""The PyTorch peer of `npm run bench`: the same work done the way a torch user would do it.

    python3 bench/peers/torch_peer.py gemm N
    python3 bench/peers/torch_peer.py lowrank M N
    python3 bench/peers/torch_peer.py svdvals M N RUNS
    python3 bench/peers/torch_peer.py analyze PAIR_DIR
    python3 bench/peers/torch_peer.py analyze-exact PAIR_DIR
    python3 bench/peers/torch_peer.py extract PAIR_DIR OUT_DIR

Each prints one JSON line. `analyze` reads base/ and tuned/ tensor by tensor and runs
torch.svd_lowrank(q = 74, niter = 2) on every matrix's ΔW, `analyze-exact` torch.linalg.svdvals
(all values, f32 LAPACK) on every ΔW; `svdvals` times f32 and f64 and states f32's accuracy
against f64; `extract` does the same as `analyze` at rank 64 and writes the PEFT adapter (lora_A = Σ^½Vᵀ, lora_B = UΣ^½, the checkpoint's dtype, norms as
modules_to_save). Checkpoints are read with the official `safetensors` package when it is
installed, otherwise with the mmap reader below, which does what safetensors.safe_open does.
"""
import json
import mmap
import os
import resource
import struct
import sys
import time

import torch

RANK = 64
OVERSAMPLE = 10
NITER = 2

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
NAMES = {v: k for k, v in DTYPES.items()}

try:
    from safetensors import safe_open
    from safetensors.torch import save_file

    READER = "safetensors"
except ImportError:
    safe_open = None
    save_file = None
    READER = "mmap"


class MmapFile:
    """One .safetensors file, mapped; get_tensor(name) views the mapped bytes without a copy."""

    def __init__(self, path):
        self.file = open(path, "rb")
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        (n,) = struct.unpack("<Q", self.map[:8])
        header = json.loads(self.map[8 : 8 + n])
        header.pop("__metadata__", None)
        self.header = header
        self.start = 8 + n

    def keys(self):
        return self.header.keys()

    def get_tensor(self, name):
        info = self.header[name]
        begin, end = info["data_offsets"]
        buf = memoryview(self.map)[self.start + begin : self.start + end]
        return torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])

    def close(self):
        self.map.close()
        self.file.close()


def open_file(path):
    return safe_open(path, framework="pt") if safe_open else MmapFile(path)


class Checkpoint:
    """A checkpoint folder (single file or sharded with an index): tensor name -> shard file."""

    def __init__(self, folder):
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
        else:
            weight_map = {k: "model.safetensors" for k in MmapFile(os.path.join(folder, "model.safetensors")).keys()}
        self.folder = folder
        self.weight_map = weight_map
        self.files = {}

    def get(self, name):
        shard = self.weight_map[name]
        if shard not in self.files:
            self.files[shard] = open_file(os.path.join(self.folder, shard))
        return self.files[shard].get_tensor(name)


def median_seconds(reps, f, warmups=1):
    for _ in range(warmups):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[reps // 2]


def gemm(n):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    seconds = median_seconds(5, lambda: a @ b)
    # A BLAS that picked the wrong kernel for this processor can be fast and wrong: check it.
    x = torch.randn(256, 256, dtype=torch.float64)
    y = torch.randn(256, 256, dtype=torch.float64)
    err = ((x.float() @ y.float()).double() - x @ y).norm() / (x @ y).norm()
    return {"gflops": 2 * n**3 / seconds / 1e9, "relativeError": err.item()}


def lowrank(m, n):
    a = torch.randn(m, n)
    return {"seconds": median_seconds(3, lambda: torch.svd_lowrank(a, q=RANK + OVERSAMPLE, niter=NITER), warmups=3)}


def svdvals(m, n, runs):
    """svdvals of one Gaussian matrix in f32 (what users call on f32 weights), `runs` times (the
    median, and the first run, as deltarank's side reports), once in f64, and how far the f32
    values are from the f64 ones: relative error over the values ≥ 1e-6·σ₁, the accuracy
    deltarank's complete route is held to (1e-5)."""
    torch.linalg.svdvals(torch.randn(64, 64))  # LAPACK's first call, outside the timing
    torch.linalg.svdvals(torch.randn(64, 64, dtype=torch.float64))
    a = torch.randn(m, n)
    a64 = a.double()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        torch.linalg.svdvals(a)
        times.append(time.perf_counter() - t)
    seconds64 = median_seconds(1, lambda: torch.linalg.svdvals(a64), warmups=0)
    s32 = torch.linalg.svdvals(a).double()
    s64 = torch.linalg.svdvals(a64)
    held = s64 >= 1e-6 * s64[0]
    rel = ((s32 - s64).abs() / s64)[held]
    return {
        "seconds": sorted(times)[runs // 2],
        "firstSeconds": times[0],
        "seconds64": seconds64,
        "runs": runs,
        "f32MaxRelErr": rel.max().item(),
        "f32Outside": int((rel > 1e-5).sum().item()),
        "held": int(held.sum().item()),
    }


def top(delta):
    """svd_lowrank at RANK + OVERSAMPLE columns, or fewer where the matrix is smaller."""
    return torch.svd_lowrank(delta, q=min(RANK + OVERSAMPLE, *delta.shape), niter=NITER)


def module_of(name):
    return name[: -len(".weight")] if name.endswith(".weight") else name


def walk(pair, on_matrix, on_vector=None):
    """Every tensor of tuned/ beside base/: ΔW of each matrix to on_matrix, each 1-D tuned tensor to on_vector."""
    base = Checkpoint(os.path.join(pair, "base"))
    tuned = Checkpoint(os.path.join(pair, "tuned"))
    count = 0
    for name in tuned.weight_map:
        t = tuned.get(name)
        if t.dim() == 2:
            delta = t.float() - base.get(name).float()
            on_matrix(name, t.dtype, delta)
            count += 1
        elif on_vector:
            on_vector(name, t)
    return count


def analyze(pair):
    spectra = {}

    def on_matrix(name, _dtype, delta):
        _, s, _ = top(delta)
        spectra[name] = s[:RANK]

    return {"matrices": walk(pair, on_matrix)}


def analyze_exact(pair):
    spectra = {}

    def on_matrix(name, _dtype, delta):
        spectra[name] = torch.linalg.svdvals(delta)

    return {"matrices": walk(pair, on_matrix)}


def write_safetensors(path, tensors, metadata):
    if save_file:
        save_file(tensors, path, metadata=metadata)
        return
    header = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for t in tensors.values():
            f.write(t.contiguous().view(torch.uint8).numpy().tobytes())


def extract(pair, out):
    tensors = {}
    targets = []
    saved = []
    ranks = {}

    def on_matrix(name, dtype, delta):
        module = module_of(name)
        embedding = module.endswith("embed_tokens")
        # PEFT's embedding delta is (B·A)ᵀ with A [r, vocab]: factor ΔWᵀ.
        u, s, v = top(delta.T if embedding else delta)
        r = min(RANK, *delta.shape)
        if r != RANK:
            ranks[module] = r
        half = s[:r].sqrt()
        b = (u[:, :r] * half).to(dtype)
        a = (v[:, :r] * half).T.to(dtype).contiguous()
        keys = ("lora_embedding_A", "lora_embedding_B") if embedding else ("lora_A.weight", "lora_B.weight")
        tensors[f"base_model.model.{module}.{keys[0]}"] = a
        tensors[f"base_model.model.{module}.{keys[1]}"] = b
        targets.append(module)

    def on_vector(name, t):
        tensors[f"base_model.model.{name}"] = t.clone()
        saved.append(module_of(name))

    count = walk(pair, on_matrix, on_vector)
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), tensors, {"format": "pt"})
    config = {
        "peft_type": "LORA",
        "r": RANK,
        "lora_alpha": RANK,
        "target_modules": targets,
        "rank_pattern": ranks,
        "alpha_pattern": ranks,
        "modules_to_save": saved,
        "bias": "none",
        "lora_dropout": 0.0,
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return {"matrices": count}


def main():
    torch.set_num_threads(os.cpu_count())
    cmd, args = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    if cmd == "gemm":
        result = gemm(int(args[0]))
    elif cmd == "lowrank":
        result = lowrank(int(args[0]), int(args[1]))
    elif cmd == "svdvals":
        result = svdvals(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "analyze":
        result = analyze(args[0])
    elif cmd == "analyze-exact":
        result = analyze_exact(args[0])
    elif cmd == "extract":
        result = extract(args[0], args[1])
    else:
        sys.exit(f"torch_peer: unknown command {cmd}")
    result["wallSeconds"] = time.perf_counter() - start
    result["maxRssBytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    result["reader"] = READER
    print(json.dumps(result))


if __name__ == "__main__":
    main()
