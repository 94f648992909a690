"""Loads deltarank's trained adapters of every LoRA variant in PEFT and checks them.

argv[1]: cases.json written by peft-variants.test.ts. For each case: build the task's model in
torch (mnist: an MLP with deltarank's module names; charlm: LlamaForCausalLM from its
config.json), load base weights, load the adapter with PeftModel, and report missing/unexpected
adapter keys, the largest difference of PEFT's logits from the tfjs ones, PEFT's trainable
parameter names for the same LoraConfig, PEFT's merge_and_unload weights against deltarank's
merge, and (PiSSA/OLoRA) PEFT's own residual base weight of the first layer against deltarank's.
Prints one JSON line.
"""
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from peft import LoraConfig, PeftModel, get_peft_model


class Fc(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)


class Mlp(nn.Module):
    """deltarank's mnist model: model.layers.{i}.fc, classifier; ReLU after each hidden layer."""

    def __init__(self, cfg):
        super().__init__()
        self.model = nn.Module()
        sizes = [cfg["input_size"], *cfg["hidden_sizes"]]
        self.model.layers = nn.ModuleList(Fc(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.classifier = nn.Linear(sizes[-1], cfg["num_labels"])

    def forward(self, x):
        for layer in self.model.layers:
            x = torch.relu(layer.fc(x))
        return self.classifier(x)


def build(case):
    cfg = json.load(open(case["base"] + "/config.json"))
    if cfg["deltarank_task"] == "mnist":
        model = Mlp(cfg)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        known = {k: v for k, v in cfg.items() if not k.startswith("deltarank_")}
        model = LlamaForCausalLM(LlamaConfig(**known))
    state = load_file(case["base"] + "/model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return model.eval(), cfg


def logits(model, cfg, inputs):
    with torch.no_grad():
        if cfg["deltarank_task"] == "mnist":
            return model(torch.tensor(inputs, dtype=torch.float32).reshape(-1, cfg["input_size"]))
        ids = torch.tensor(inputs, dtype=torch.long).reshape(-1, cfg["max_position_embeddings"])
        return model(input_ids=ids).logits.reshape(-1, cfg["vocab_size"])


def main():
    torch.manual_seed(0)
    cases = json.load(open(sys.argv[1]))
    out = []
    for case in cases:
        model, cfg = build(case)
        peft_model = PeftModel.from_pretrained(model, case["adapter"])
        result = peft_model.load_adapter(case["adapter"], adapter_name="check")
        missing = [k for k in result.missing_keys if ".check" in k]
        peft_model.set_adapter("default")
        got = logits(peft_model, cfg, case["inputs"]).numpy()
        expected = np.array(case["logits"], dtype=np.float32).reshape(got.shape)
        # PEFT's own trainable set for the variant's LoraConfig on a fresh model.
        fresh, _ = build(case)
        v = case["variant"]
        config = LoraConfig(
            r=case["rank"],
            lora_alpha=case["alpha"],
            target_modules=case["targets"],
            use_dora=v["useDora"],
            lora_bias=v["loraBias"],
            init_lora_weights=v["init"],
        )
        tuned = get_peft_model(fresh, config)
        trainable = sorted(
            n.removeprefix("base_model.model.").replace(".default", "")
            for n, p in tuned.named_parameters()
            if p.requires_grad
        )
        residual_diff = None
        residual_truth_diff = None
        if case.get("residual"):
            first = case["targets"][0]
            w = tuned.base_model.model.get_submodule(first).base_layer.weight.detach().numpy().ravel()
            ours = np.array(case["residual"], dtype=np.float32)
            scale = np.max(np.abs(ours))
            residual_diff = float(np.max(np.abs(w - ours)) / scale)
            if v["init"] == "pissa":
                # PiSSA's residual W - U_r S_r V_r^T with LAPACK's SVD in f64: PEFT takes it in f32,
                # which puts its own residual a few 1e-5 of max |W| away on some processors.
                w0 = load_file(case["base"] + "/model.safetensors")[first + ".weight"].double()
                u, s, vh = torch.linalg.svd(w0, full_matrices=False)
                r = case["rank"]
                truth = (w0 - u[:, :r] @ torch.diag(s[:r]) @ vh[:r]).numpy().ravel()
                residual_truth_diff = float(np.max(np.abs(ours - truth)) / scale)
        # PEFT's merge against deltarank's (case["merged"]: tensor name -> values).
        merged = peft_model.merge_and_unload().state_dict()
        merge_diff = 0.0
        for name, values in case["merged"].items():
            ours = np.array(values, dtype=np.float32)
            theirs = merged[name].detach().numpy().ravel()
            merge_diff = max(merge_diff, float(np.max(np.abs(theirs - ours)) / np.max(np.abs(ours))))
        out.append(
            {
                "mergeDiff": merge_diff,
                "name": case["name"],
                "missing": missing,
                "unexpected": list(result.unexpected_keys),
                "maxDiff": float(np.max(np.abs(got - expected))),
                "scale": float(np.max(np.abs(expected))),
                "useDora": bool(peft_model.peft_config["default"].use_dora),
                "trainable": trainable,
                "residualDiff": residual_diff,
                "residualTruthDiff": residual_truth_diff,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
