"""Real short fine-tunes of tiny models of each supported family, for `verify` and `extract --calibrate`.

Per family: a base pretrained 100 AdamW steps on English prose, then fine-tuned 30 steps on Python-like
code (seeded; the projections move, embeddings, norms and head stay), both saved with a tiny BPE tokenizer.json. The code is split: the first part
trains (and calibrates), the rest is held out. Reference figures on the held-out tokens, computed here by
transformers: KL(tuned||base), KL(tuned||base + rank-r SVD of every linear ΔW), top-1, perplexities.

usage: finetune.py TEXTS_JSON OUT_DIR FAMILY[,FAMILY...] RANK SEQ_LEN
prints one JSON line {family: {...figures}, "tokens": {"heldout": [[...]], ...}}
"""
import copy
import json
import os
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import AutoConfig, AutoModelForCausalLM

torch.set_num_threads(1)
texts = json.load(open(sys.argv[1]))
OUT, FAMILIES, RANK, SEQ = sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), int(sys.argv[5])
os.makedirs(OUT, exist_ok=True)
prose, code = texts["prose"], texts["code"]
cut = int(len(code) * 0.6)
cut = code.rfind("\n", 0, cut) + 1
train_code, held_code = code[:cut], code[cut:]
open(os.path.join(OUT, "calibration.txt"), "w").write(train_code)
open(os.path.join(OUT, "heldout.txt"), "w").write(held_code)

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator([prose, code], trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
tok_file = os.path.join(OUT, "tokenizer.json")
tok.save(tok_file)
VOCAB = tok.get_vocab_size()

def ids(text):
    return tok.encode(text, add_special_tokens=False).ids

def chunks(t):
    return [t[i:i + SEQ] for i in range(0, len(t), SEQ) if len(t[i:i + SEQ]) >= 2]

prose_ids, train_ids, held_ids = ids(prose), ids(train_code), ids(held_code)
held = chunks(held_ids)

COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False)
EXTRA = {
    "llama": ("llama", {}),
    "mistral": ("mistral", dict(sliding_window=None)),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", dict(head_dim=16)),
    "gemma2": ("gemma2", dict(head_dim=16, query_pre_attn_scalar=16, tie_word_embeddings=True)),
    "gemma3": ("gemma3_text", dict(head_dim=16, query_pre_attn_scalar=16, tie_word_embeddings=True, sliding_window=512)),
    "phi3": ("phi3", dict(pad_token_id=0)),
}
PT_STEPS = int(os.environ.get("PT_STEPS", 100))
FT_STEPS = int(os.environ.get("FT_STEPS", 30))
FT_LR = float(os.environ.get("FT_LR", 1e-3))
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj")

def train(model, data, steps, lr, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    data = torch.tensor(data)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(data) - SEQ - 1, (8,), generator=g)
        batch = torch.stack([data[s:s + SEQ] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())

def logprobs(model):
    with torch.no_grad():
        return [torch.log_softmax(model(torch.tensor([s])).logits[0].double(), -1) for s in held]

def compare(lt, lo):
    kl, agree, n = 0.0, 0, 0
    for a, b in zip(lt, lo):
        kl += float((a.exp() * (a - b)).sum())
        agree += int((a.argmax(-1) == b.argmax(-1)).sum())
        n += a.shape[0]
    return kl / n, agree / n

def ppl(lp):
    nll, n = 0.0, 0
    for l, s in zip(lp, held):
        t = torch.tensor(s[1:])
        nll -= float(l[:-1].gather(1, t[:, None]).sum())
        n += len(t)
    return float(torch.exp(torch.tensor(nll / n)))

result = {"tokens": {"heldout": held, "vocab": VOCAB}}
for i, fam in enumerate(FAMILIES):
    model_type, extra = EXTRA[fam]
    # Seeded by family, not by place in the list: any subset builds the same models as the full list.
    torch.manual_seed(10 + list(EXTRA).index(fam))
    config = AutoConfig.for_model(model_type, **{**COMMON, **extra})
    config._attn_implementation = "eager"
    base = AutoModelForCausalLM.from_config(config).float()
    base_loss = train(base, prose_ids, PT_STEPS, 3e-3, 1)
    tuned = copy.deepcopy(base)
    for n, p in tuned.named_parameters():
        # The fine-tune moves the projections only, so an adapter of them can reach it.
        p.requires_grad_(n.endswith(".weight") and n.split(".")[-2] in LINEAR)
    tuned_loss = train(tuned, train_ids, FT_STEPS, FT_LR, 2)
    for name, m in (("base", base), ("tuned", tuned)):
        folder = os.path.join(OUT, fam, name)
        m.save_pretrained(folder)
        tok.save(os.path.join(folder, "tokenizer.json"))
    # base + the rank-RANK truncated SVD of every linear ΔW (embeddings, head and norms left as the base's)
    svd = copy.deepcopy(base)
    with torch.no_grad():
        tp = dict(tuned.named_parameters())
        for n, p in svd.named_parameters():
            if n.endswith(".weight") and n.split(".")[-2] in LINEAR:
                d = (tp[n] - p).double()
                u, s, vh = torch.linalg.svd(d, full_matrices=False)
                p.add_(((u[:, :RANK] * s[:RANK]) @ vh[:RANK]).float())
    lb, lt, ls = logprobs(base), logprobs(tuned), logprobs(svd)
    kl_b, top_b = compare(lt, lb)
    kl_s, top_s = compare(lt, ls)
    result[fam] = dict(klBase=kl_b, top1Base=top_b, klSvd=kl_s, top1Svd=top_s, pplBase=ppl(lb), pplTuned=ppl(lt), pplSvd=ppl(ls),
                       lossBase=base_loss, lossTuned=tuned_loss)
print(json.dumps(result))
