"""Tiny random base models and their fine-tunes, built by transformers itself, for the PEFT checks.

usage: build_models.py OUT_DIR [ARCH ...]

For each architecture: a seeded random model from a config (hidden 32, 2 layers, vocabulary 96) saved as
OUT_DIR/ARCH/base, then a few seeded AdamW steps on random tokens (every parameter changes: weight decay
reaches rows no token touched) saved as OUT_DIR/ARCH/tuned, both as safetensors. A folder already built
with the same spec is reused. Prints one JSON line: {"models": {ARCH: {...} or {"error", "traceback"}}, "versions": {...}, "seconds": s}.
"""

import hashlib
import json
import os
import sys
import time
import traceback

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

# Ids inside the tiny vocabulary (the config defaults point past it).
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
VOCAB = 96
SEQ = 16  # also the number of positions, so every position embedding row is trained
DECODER = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=SEQ,
    **TOKENS,
)

# name → (config class, keyword arguments, what it checks); the resized-vocabulary fine-tune grows the vocabulary by RESIZE.
RESIZE = 8
SPECS = {
    "llama": ("LlamaConfig", dict(DECODER), "Llama: q/k/v/o, gate/up/down, RMSNorm, untied lm_head"),
    "qwen2": ("Qwen2Config", dict(DECODER), "Qwen2: q/k/v biases"),
    "gemma": ("GemmaConfig", dict(DECODER, head_dim=8), "Gemma: tied input embeddings and lm_head"),
    "phi3": ("Phi3Config", dict(DECODER), "Phi-3: fused qkv_proj and gate_up_proj"),
    "gpt2": (
        "GPT2Config",
        dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=SEQ, bos_token_id=1, eos_token_id=2),
        "GPT-2: Conv1D [in, out] weights, LayerNorm with bias, tied wte, position embeddings",
    ),
    "bert_cls": (
        "BertConfig",
        dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=SEQ, num_labels=3, pad_token_id=0),
        "BERT for sequence classification: classifier head, pooler, biases, LayerNorm with bias, token types",
    ),
    "mixtral": (
        "MixtralConfig",
        dict(DECODER, num_local_experts=4, num_experts_per_tok=2),
        "Mixtral: router and 4 experts per layer (fused in transformers 5, per expert on disk)",
    ),
    "qwen3_moe": (
        "Qwen3MoeConfig",
        dict(DECODER, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2, decoder_sparse_step=1),
        "Qwen3-MoE: q/k norms, router and 4 experts per layer (fused in transformers 5, per expert on disk)",
    ),
    "llama_resized": ("LlamaConfig", dict(DECODER), f"Llama fine-tuned with {RESIZE} tokens added to the vocabulary"),
}
SEED = 0
STEPS = 3
LR = 1e-3
BATCH = 4


def seeded(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def build(name, out):
    cls_name, kwargs, what = SPECS[name]
    config = getattr(transformers, cls_name)(**kwargs)
    seeded(SEED)
    classify = name == "bert_cls"
    auto = AutoModelForSequenceClassification if classify else AutoModelForCausalLM
    model = auto.from_config(config, dtype=torch.float32)
    model.save_pretrained(os.path.join(out, "base"))
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}

    if name == "llama_resized":
        model.resize_token_embeddings(VOCAB + RESIZE, mean_resizing=False)
    vocab = model.config.vocab_size
    gen = seeded(SEED + 1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    for _ in range(STEPS):
        ids = torch.randint(3, vocab, (BATCH, SEQ), generator=gen)
        if classify:
            types = torch.randint(0, 2, (BATCH, SEQ), generator=gen)
            labels = torch.randint(0, 3, (BATCH,), generator=gen)
            loss = model(input_ids=ids, token_type_ids=types, labels=labels).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(os.path.join(out, "tuned"))

    # Every parameter must have moved, or the checks downstream prove less than they claim.
    unchanged = [k for k, v in model.state_dict().items() if k in base and base[k].shape == v.shape and torch.equal(base[k], v)]
    if unchanged:
        raise RuntimeError(f"the fine-tune left {unchanged} unchanged")
    return {
        "what": what,
        "task": "SEQ_CLS" if classify else "CAUSAL_LM",
        "base": os.path.join(out, "base"),
        "tuned": os.path.join(out, "tuned"),
        "vocab": vocab,
        "tied": bool(getattr(model.config, "tie_word_embeddings", False)),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main():
    root = sys.argv[1]
    names = sys.argv[2:] or list(SPECS)
    torch.set_num_threads(1)
    transformers.logging.disable_progress_bar()
    start = time.time()
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    models = {}
    for name in names:
        if name not in SPECS:
            raise SystemExit(f"unknown architecture {name!r}; known: {', '.join(SPECS)}")
        out = os.path.join(root, name)
        spec = hashlib.sha256(json.dumps([SPECS[name], SEED, STEPS, LR, BATCH, SEQ, versions], sort_keys=True).encode()).hexdigest()
        done = os.path.join(out, "built.json")
        if os.path.exists(done):
            with open(done) as f:
                cached = json.load(f)
            if cached.get("spec") == spec:
                models[name] = cached["model"]
                continue
        try:
            models[name] = build(name, out)
        except Exception as e:  # one architecture's failure must not hide the others'
            models[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-1500:]}
            continue
        with open(done, "w") as f:
            json.dump({"spec": spec, "model": models[name]}, f)
    print(json.dumps({"models": models, "versions": versions, "seconds": time.time() - start}))


if __name__ == "__main__":
    main()
