"""Adapters made by PEFT itself, of every kind deltarank reads, with PEFT's own merge and deltas.

    python test/peft/peft_adapters.py make OUT      # tiny Llama, GPT-2 and Mixtral bases; one adapter per case
    python test/peft/peft_adapters.py load ADAPTER BASE [ADAPTER BASE ...]   # load adapters in PEFT: missing/unexpected keys, warnings

`make` writes OUT/<arch>/base (save_pretrained), and per case OUT/<case>/adapter (PeftModel.save_pretrained
after a few Adam steps, so B != 0 and DoRA's magnitude moves) and OUT/<case>/merged (merge_and_unload, f32).
Its last stdout line is JSON: per case the folders and, per changed base tensor, the singular values
(torch.linalg.svdvals, f64) of the change PEFT's merge makes, W' - W, computed on an f64 copy of the model.
"""
import copy
import json
import os
import sys
import warnings

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MixtralConfig

from peft import LoraConfig, PeftModel, get_peft_model

torch.set_num_threads(1)


def bases():
    return {
        # attention_bias so lora_bias has a base bias to add to
        "llama": LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, attention_bias=True, tie_word_embeddings=False, max_position_embeddings=64),
        "gpt2": GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32),
        "mixtral": MixtralConfig(vocab_size=64, hidden_size=32, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, tie_word_embeddings=False,
                                 max_position_embeddings=64),
    }


ATTN = ["q_proj", "v_proj"]
CASES = {
    "plain": ("llama", dict(r=4, lora_alpha=8, target_modules=ATTN)),
    # no lora_alpha: PEFT's default is 8
    "default-alpha": ("llama", dict(r=4, target_modules=ATTN)),
    "rslora-patterns": ("llama", dict(r=4, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "v_proj", "down_proj"],
                                      rank_pattern={"v_proj": 2, "layers.1.mlp.down_proj": 6},
                                      alpha_pattern={"down_proj": 3, "model.layers.0.self_attn.q_proj": 5})),
    "modules-to-save": ("llama", dict(r=4, lora_alpha=8, target_modules=ATTN, modules_to_save=["lm_head", "norm"])),
    "embedding": ("llama", dict(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"])),
    "lora-bias": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"], lora_bias=True)),
    "dora": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], use_dora=True)),
    "gpt2-conv1d": ("gpt2", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, bias="lora_only")),
    "gpt2-dora": ("gpt2", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True, use_dora=True)),
    "moe-params": ("mixtral", dict(r=2, lora_alpha=4, target_modules=["q_proj"],
                                   target_parameters=["experts.gate_up_proj", "experts.down_proj"])),
}


def train(model, steps=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=0.05)
    model.train()
    for _ in range(steps):
        ids = torch.randint(0, 64, (4, 12), generator=g)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def make(out):
    result = {"versions": {"torch": torch.__version__}, "bases": {}, "cases": {}}
    models = {}
    for arch, cfg in bases().items():
        torch.manual_seed(1)
        m = AutoModelForCausalLM.from_config(cfg).float().eval()
        d = os.path.join(out, arch, "base")
        m.save_pretrained(d)
        models[arch] = m
        result["bases"][arch] = d
    for name, (arch, kw) in CASES.items():
        torch.manual_seed(2)
        base = models[arch]
        pm = get_peft_model(copy.deepcopy(base), LoraConfig(**kw))
        train(pm)
        adapter = os.path.join(out, name, "adapter")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm.save_pretrained(adapter)
        # The change PEFT's merge makes, in f64.
        before = {k: v.double() for k, v in base.state_dict().items()}
        merged64 = copy.deepcopy(pm).double().merge_and_unload().state_dict()
        deltas = {}
        for k, w in merged64.items():
            if k not in before or before[k].shape != w.shape:
                continue
            d = w - before[k]
            if d.abs().max().item() == 0 or d.ndim < 2:
                continue
            if d.ndim == 2:
                deltas[k] = torch.linalg.svdvals(d).tolist()
            else:
                deltas[k] = [torch.linalg.svdvals(d[e]).tolist() for e in range(d.shape[0])]
        merged = os.path.join(out, name, "merged")
        pm.merge_and_unload().save_pretrained(merged)
        result["cases"][name] = {"arch": arch, "base": result["bases"][arch], "adapter": adapter, "merged": merged, "deltas": deltas}
    print(json.dumps(result))


def load(pairs):
    report = {}
    bases_by_dir = {}
    for adapter, base_dir in pairs:
        if base_dir not in bases_by_dir:
            bases_by_dir[base_dir] = AutoModelForCausalLM.from_pretrained(base_dir)
        # PeftModel.from_pretrained wraps its model in place: each adapter gets a fresh copy.
        base = copy.deepcopy(bases_by_dir[base_dir])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pm = PeftModel.from_pretrained(base, adapter)
        lr = getattr(pm, "load_result", None)
        report[adapter] = {
            "warnings": [str(w.message) for w in caught],
            "missing": [k for k in (lr.missing_keys if lr else []) if "lora_" in k or "modules_to_save" in k],
            "unexpected": list(lr.unexpected_keys) if lr else [],
        }
    print(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        rest = sys.argv[2:]
        load(list(zip(rest[0::2], rest[1::2])))
