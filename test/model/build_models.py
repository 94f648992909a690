"""Tiny random decoder models of every supported family, built and run by transformers (and PEFT
for adapters): the reference the TypeScript forward pass is held against.

usage: build_models.py OUT_DIR   (prints one JSON line: {"families": [...], "tokens": [[...], ...]})
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

torch.set_num_threads(1)
OUT = sys.argv[1]
VOCAB = 96
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, initializer_range=0.1, rms_norm_eps=1e-5)
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
FAMILIES = {
    # name: (model_type, extra config, LoRA targets, LoRA options)
    "llama": ("llama", dict(attention_bias=True, tie_word_embeddings=False), ATTN + ["embed_tokens", "lm_head"], {}),
    "llama-rope3": ("llama", dict(rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0,
                                                       high_freq_factor=4.0, original_max_position_embeddings=8)), ATTN, dict(use_dora=True)),
    "mistral": ("mistral", dict(sliding_window=4, head_dim=16), ATTN, dict(use_rslora=True)),
    "qwen2": ("qwen2", dict(tie_word_embeddings=False), ATTN + ["lm_head"], {}),
    # lora_bias: lora_B's own bias, on the layers that have one (q, k, v in Qwen2).
    "qwen2-lora-bias": ("qwen2", dict(tie_word_embeddings=False), ["q_proj", "k_proj", "v_proj"], dict(lora_bias=True)),
    "qwen3": ("qwen3", dict(head_dim=8, tie_word_embeddings=False), ATTN, dict(use_dora=True)),
    "gemma2": ("gemma2", dict(head_dim=8, sliding_window=4, query_pre_attn_scalar=12, attn_logit_softcapping=1.5,
                              final_logit_softcapping=2.0, hidden_activation="gelu_pytorch_tanh"), ATTN, {}),
    "gemma3": ("gemma3_text", dict(head_dim=8, sliding_window=4, query_pre_attn_scalar=8, layer_types=["sliding_attention", "full_attention"],
                                   rope_parameters={"sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                                                    "full_attention": dict(rope_type="linear", rope_theta=1e6, factor=2.0)}), ATTN, {}),
    "phi3": ("phi3", dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5), pad_token_id=0),
             ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], {}),
}
g = torch.Generator().manual_seed(0)
TOKENS = [torch.randint(0, VOCAB, (12,), generator=g).tolist(), torch.randint(0, VOCAB, (7,), generator=g).tolist()]


def logits_of(model):
    with torch.no_grad():
        return torch.cat([model(torch.tensor([s])).logits[0].float() for s in TOKENS], 0).contiguous()


out = {}
for i, (name, (model_type, extra, targets, lora_opts)) in enumerate(FAMILIES.items()):
    torch.manual_seed(100 + i)
    config = AutoConfig.for_model(model_type, **COMMON, **extra)
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).float().eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            # Norm weights start at 1 (or 0 for Gemma) and biases at 0: move them so that a mix-up shows.
            if "norm" in pname or pname.endswith(".bias"):
                p.add_(0.2 * torch.randn_like(p))
    folder = os.path.join(OUT, name)
    model.save_pretrained(folder)
    tensors = {"base": logits_of(model)}
    lcfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False, lora_dropout=0.0, **lora_opts)
    peft_model = get_peft_model(model, lcfg)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_" in pname:
                p.mul_(1.5)
            if "lora_B" in pname and pname.endswith(".bias"):
                p.add_(0.3 * torch.randn_like(p))  # PEFT starts lora_B.bias at zero
    peft_model.save_pretrained(os.path.join(OUT, name + "-lora"))
    peft_model.eval()
    tensors["adapter"] = logits_of(peft_model)
    save_file(tensors, os.path.join(OUT, name + "-expected.safetensors"))
    out[name] = model_type
print(json.dumps({"families": out, "tokens": TOKENS}))
