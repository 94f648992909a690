"""Load deltarank's adapters in PEFT and hold them against the fine-tunes they came from.

usage: check_adapters.py JOBS.json

JOBS.json: [{"id", "base", "tuned", "task", "adapter", "deltarank_merged"?}], where `adapter` holds what
`deltarank extract` wrote (adapter_config.json, adapter_model.safetensors, extraction.json) and
`deltarank_merged` what `deltarank merge` made of it.
Per job, in one process:
- `PeftModel.from_pretrained` on the base model, recording PEFT's load result (missing and unexpected
  keys) and every warning (Python's and the loggers' of transformers and peft);
- every tensor of `merge_and_unload`, saved by transformers in the checkpoint's own names, against
  base and fine-tune: a LoRA module's ΔW against the Eckart–Young optimum at its rank, computed here from
  the real ΔW by torch.linalg.svdvals in f64; a saved-whole module against the fine-tune; anything
  else against the base (and it must have been listed as left out when the fine-tune changed it);
- logits of the unmerged and the merged model against the fine-tune's, with the tensors the
  extraction lists as left out put back to the base's values;
- deltarank's own merge against PEFT's, tensor by tensor.
A job that raises reports its error and traceback; the others still run.
Prints one JSON line: {"results": {id: {...}}, "versions": {...}, "seconds": s}.
"""

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings

import peft
import safetensors
import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

SEED = 1234
BATCH, SEQ = 2, 16
# ΔW of a LoRA module at full rank, and a saved-whole weight: f32 factors and f32 sums.
EXACT_RTOL = 1e-5
# Two f32 merges of the same factors, in different order of operations.
MERGE_RTOL = 1e-5


def load_model(path, task, vocab=None, **kwargs):
    auto = AutoModelForSequenceClassification if task == "SEQ_CLS" else AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=torch.float32, **kwargs)
    if vocab is not None and model.get_input_embeddings().weight.shape[0] != vocab:
        # What a user does before loading an adapter made from a fine-tune with a resized vocabulary.
        model.resize_token_embeddings(vocab, mean_resizing=False)
    return model.eval()


def logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits.double()


def rel(a, b):
    return float((a - b).norm() / b.norm())


def checkpoint(path):
    """Every tensor of a model folder (one file or shards)."""
    out = {}
    for f in sorted(os.listdir(path)):
        if f.endswith(".safetensors"):
            out.update(load_file(os.path.join(path, f)))
    return out


def compare_merges(ours_dir, peft_sd, names):
    """deltarank's merge against PEFT's merge_and_unload, tensor by tensor (relative Frobenius)."""
    ours = checkpoint(ours_dir)
    worst, problems = 0.0, []
    for name in sorted(names):
        want = peft_sd[name].double()
        got = ours.get(name)
        if got is None or got.shape != want.shape:
            problems.append(f"{name}: deltarank merge wrote {None if got is None else list(got.shape)}, PEFT's has {list(want.shape)}")
            continue
        d = float((got.double() - want).norm() / max(float(want.norm()), 1e-30))
        worst = max(worst, d)
        if d > MERGE_RTOL:
            problems.append(f"{name}: deltarank merge differs from PEFT's merge_and_unload by {d:.3g} relative")
    problems += [f"{n}: written by deltarank merge, not in the model" for n in sorted(set(ours) - set(peft_sd))]
    return {"worst": worst, "problems": problems}


@contextlib.contextmanager
def recording():
    """Every warning and log record of WARNING or above raised inside, and PEFT's load result."""
    caught = {"warnings": [], "load_results": []}

    class Handler(logging.Handler):
        def emit(self, record):
            caught["warnings"].append(f"{record.name}: {record.getMessage()}")

    handler = Handler(logging.WARNING)
    loggers = [logging.getLogger(n) for n in ("", "transformers", "peft")]
    transformers.logging.set_verbosity_warning()
    for lg in loggers:
        lg.addHandler(handler)
    original = PeftModel.load_adapter

    def load_adapter(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        caught["load_results"].append(result)
        return result

    PeftModel.load_adapter = load_adapter
    try:
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            yield caught
        caught["warnings"] += [f"{w.category.__name__}: {w.message}" for w in ws]
    finally:
        PeftModel.load_adapter = original
        for lg in loggers:
            lg.removeHandler(handler)
        transformers.logging.set_verbosity_error()


def tied_output(model):
    """The module name of the output embeddings when they share the input embeddings' weight, else None."""
    out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
    if out_emb is None or in_emb is None or out_emb.weight.data_ptr() != in_emb.weight.data_ptr():
        return None
    return next(n for n, m in model.named_modules() if m is out_emb)


def untied_for_merge(job, adapter, vocab, head):
    """PEFT's own advice for merging into a model with tied embeddings (its merge_and_unload adds a tied pair's
    update twice, and warns so): untie, lm_head a copy of the embeddings, and adapt both sides apart."""
    model = load_model(job["base"], job["task"], vocab, tie_word_embeddings=False)
    model.get_output_embeddings().weight.data = model.get_input_embeddings().weight.data.clone()
    cfg = peft.LoraConfig.from_pretrained(adapter)
    cfg.ensure_weight_tying = False
    cfg.target_modules = set(cfg.target_modules) | {head}
    return PeftModel.from_pretrained(model, adapter, config=cfg).eval()


def tensor_name(module, names):
    for candidate in (f"{module}.weight", module):
        if candidate in names:
            return candidate
    return None


def check(job, scratch):
    torch.manual_seed(SEED)  # the rows resize_token_embeddings adds to the base are drawn at random
    adapter = job["adapter"]
    with open(os.path.join(adapter, "extraction.json")) as f:
        extraction = json.load(f)
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        config = json.load(f)
    base_sd, tuned_sd = checkpoint(job["base"]), checkpoint(job["tuned"])
    vocab = transformers.AutoConfig.from_pretrained(job["tuned"]).vocab_size
    left_out = {s["name"]: s["reason"] for s in extraction.get("skipped", [])}
    left_out.update({s["name"]: s["reason"] for s in extraction.get("coverage", {}).get("leftOut", [])})
    out = {"config": {k: config.get(k) for k in ("task_type", "r", "lora_alpha", "use_rslora", "lora_bias", "bias", "fan_in_fan_out", "modules_to_save", "target_parameters")}}
    out["left_out"] = {k: v for k, v in left_out.items() if v != "unchanged"}

    model = load_model(job["base"], job["task"], vocab)
    head = tied_output(model)
    emb = model.get_input_embeddings()
    emb_name = next(n for n, m in model.named_modules() if m is emb) + ".weight"
    with recording() as caught:
        pm = PeftModel.from_pretrained(model, adapter)
    pm.eval()
    result = caught["load_results"][-1] if caught["load_results"] else None
    out["missing_keys"] = list(result.missing_keys) if result is not None else None
    out["unexpected_keys"] = list(result.unexpected_keys) if result is not None else None
    out["warnings"] = caught["warnings"]

    gen = torch.Generator().manual_seed(SEED)
    inputs = {"input_ids": torch.randint(3, vocab, (BATCH, SEQ), generator=gen)}
    if job["task"] == "SEQ_CLS":
        inputs["token_type_ids"] = torch.randint(0, 2, (BATCH, SEQ), generator=gen)
    unmerged = logits(pm, inputs)
    out["merge_route"] = "untied first" if head and config.get("ensure_weight_tying") else "direct"
    merged_model = (untied_for_merge(job, adapter, vocab, head) if out["merge_route"] != "direct" else pm).merge_and_unload()
    merged = logits(merged_model, inputs)
    merged_dir = os.path.join(scratch, "merged")
    merged_model.save_pretrained(merged_dir)
    merged_sd = checkpoint(merged_dir)

    # The fine-tune as the extraction promises it: what it lists as left out keeps the base's values.
    ref_dir = os.path.join(scratch, "reference")
    shutil.copytree(job["tuned"], ref_dir)
    ref_sd = dict(tuned_sd)
    for name in left_out:
        if name in ref_sd and name in base_sd and base_sd[name].shape == ref_sd[name].shape:
            ref_sd[name] = base_sd[name]
    save_file(ref_sd, os.path.join(ref_dir, "model.safetensors"), metadata={"format": "pt"})
    reference = logits(load_model(ref_dir, job["task"]), inputs)
    tuned = logits(load_model(job["tuned"], job["task"]), inputs)
    out["logits"] = {
        "unmerged_vs_reference": rel(unmerged, reference),
        "merged_vs_reference": rel(merged, reference),
        "merged_vs_tuned": rel(merged, tuned),
        "base_vs_tuned": rel(logits(load_model(job["base"], job["task"], vocab), inputs), tuned),
    }

    problems = []
    names = set(merged_sd) & (set(base_sd) | set(tuned_sd))
    problems += [f"{n}: in the checkpoint, missing from the merged model" for n in sorted(set(tuned_sd) - set(merged_sd))]
    if out["merge_route"] != "direct":
        head_w, emb_w = merged_sd.get(head + ".weight"), merged_sd.get(emb_name)
        if head_w is None or emb_w is None or not torch.allclose(head_w, emb_w, rtol=0, atol=1e-6 * float(emb_w.abs().max())):
            problems.append(f"{head}: after merging the untied pair, lm_head differs from {emb_name}")
    covered = set()
    modules = []
    for m in extraction["modules"]:
        name = tensor_name(m["module"], names)
        if name is None:
            problems.append(f"{m['module']}: extracted, but the merged model has no such tensor")
            continue
        covered.add(name)
        w0, w1, wm = base_sd[name].double(), tuned_sd[name].double(), merged_sd[name].double()
        delta, got = w1 - w0, wm - w0
        r = m["rank"]
        s = torch.linalg.svdvals(delta)
        optimum = float(s[r:].square().sum().sqrt())
        err = float((delta - got).norm())
        norm = float(delta.norm())
        sg = torch.linalg.svdvals(got)
        numeric_rank = int((sg > sg[0] * 1e-5).sum()) if sg.numel() and sg[0] > 0 else 0
        entry = {"module": m["module"], "shape": list(delta.shape), "rank": r, "error": err / norm, "optimum": optimum / norm, "numeric_rank": numeric_rank,
                 "reported_error": m.get("relativeError"), "reported_optimum": m.get("optimalError"), "reported_bound": bool(m.get("bound"))}
        entry["ratio"] = err / optimum if optimum > EXACT_RTOL * norm else None
        modules.append(entry)
        if numeric_rank > r:
            problems.append(f"{name}: merged ΔW has numeric rank {numeric_rank} > the rank {r} extracted")
        if err > max(1.05 * optimum, EXACT_RTOL * norm):
            problems.append(f"{name}: ‖ΔW − merged ΔW‖/‖ΔW‖ = {err / norm:.6g} > 1.05 × the rank-{r} optimum {optimum / norm:.6g}")
    # What the adapter file carries whole (modules_to_save, biases under bias: "lora_only") and as lora_B.bias:
    # those tensors must come out of the merge as the fine-tune's own.
    keys = list(load_file(os.path.join(adapter, "adapter_model.safetensors")).keys())
    whole = {k.removeprefix("base_model.model.").replace(".base_layer.", ".") for k in keys if ".lora_" not in k}
    whole |= {k.removeprefix("base_model.model.").removesuffix(".lora_B.bias") + ".bias" for k in keys if k.endswith(".lora_B.bias")}
    for module in extraction.get("modulesToSave", []):
        if not any(n.startswith(module + ".") for n in whole):
            problems.append(f"{module}: listed in modulesToSave, but the adapter file holds none of its tensors")
    for name in sorted(whole & names - covered):
        covered.add(name)
        want = tuned_sd.get(name)
        if want is None or want.shape != merged_sd[name].shape or float((merged_sd[name].double() - want.double()).norm()) > EXACT_RTOL * float(want.double().norm()):
            problems.append(f"{name}: carried whole (or as lora_B.bias), but the merged value is not the fine-tune's")
    for name in sorted(names - covered):
        w0, w1, wm = base_sd.get(name), tuned_sd.get(name), merged_sd[name]
        if w0 is None or w0.shape != wm.shape or not torch.equal(w0, wm):
            problems.append(f"{name}: neither extracted nor saved whole, yet the merged model changed it")
        elif w1 is not None and not torch.equal(w0, w1) and name not in left_out:
            problems.append(f"{name}: the fine-tune changed it, but the extraction neither wrote it nor lists it as left out")
    out["modules"] = modules
    if job.get("deltarank_merged"):
        out["deltarank_merge"] = compare_merges(job["deltarank_merged"], merged_sd, names)
        # What a user does with it next: load the merged folder in transformers.
        out["logits"]["deltarank_merged_vs_reference"] = rel(logits(load_model(job["deltarank_merged"], job["task"]), inputs), reference)
    ratios = [m["ratio"] for m in modules if m["ratio"] is not None]
    out["worst_ratio"] = max(ratios) if ratios else None
    out["worst_error"] = max((m["error"] for m in modules), default=None)
    out["weight_problems"] = problems
    return out


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    start = time.time()
    results = {}
    for job in jobs:
        with tempfile.TemporaryDirectory() as scratch:
            try:
                results[job["id"]] = check(job, scratch)
            except Exception as e:  # one architecture's failure must not hide the others'
                results[job["id"]] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-1500:]}
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "safetensors": safetensors.__version__}
    print(json.dumps({"results": results, "versions": versions, "seconds": time.time() - start}))


if __name__ == "__main__":
    main()
