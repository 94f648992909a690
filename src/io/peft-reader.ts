/**
 * Reading PEFT LoRA adapter folders (the layout is described in peft.ts).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { openCheckpoint } from './checkpoint.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, PEFT_PREFIX as PREFIX, type Adapter, type AdapterConfig, type LoraModule } from './peft.js';

/** PEFT's pattern rule for rank_pattern / alpha_pattern keys: the key (a regex) matches the whole path or its tail after a dot. */
function lookupPattern(pattern: Record<string, unknown>, module: string): number | undefined {
  if (typeof pattern[module] === 'number') return pattern[module];
  for (const [key, value] of Object.entries(pattern)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${key})$`);
    } catch {
      continue;
    }
    if (typeof value === 'number' && re.test(module)) return value;
  }
  return undefined;
}

/**
 * Read a PEFT LoRA adapter folder: every module's factors widened to f32 with its rank
 * (from the tensors, checked against r / rank_pattern) and alpha (lora_alpha / alpha_pattern),
 * plus modules_to_save weights. FormatError naming the file and key for: a missing
 * adapter_config.json or adapter_model.safetensors, a config that is not a LoRA JSON object,
 * a key outside `base_model.model.`, a module with one factor only, factors that are not
 * 2-D or whose ranks disagree with each other or with the config.
 */
export async function readAdapter(dir: string): Promise<Adapter> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new FormatError(`${dir}: an adapter is a folder holding ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`);
  const names = await readdir(dir);
  if (!names.includes(ADAPTER_CONFIG)) throw new FormatError(`${dir}: no ${ADAPTER_CONFIG} (not a PEFT adapter folder)`);
  if (!names.includes(ADAPTER_WEIGHTS)) {
    const hint = names.includes('adapter_model.bin') ? ' (adapter_model.bin is a pickle, which this tool does not load; convert it to safetensors)' : '';
    throw new FormatError(`${dir}: no ${ADAPTER_WEIGHTS}${hint}`);
  }
  let config: AdapterConfig;
  try {
    config = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG), 'utf8')) as AdapterConfig;
  } catch (err) {
    throw new FormatError(`${ADAPTER_CONFIG}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new FormatError(`${ADAPTER_CONFIG}: not a JSON object`);
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') throw new FormatError(`${ADAPTER_CONFIG}: peft_type is ${JSON.stringify(config.peft_type)}, not "LORA"`);
  const r = config.r;
  const loraAlpha = config.lora_alpha ?? r;
  if (typeof r !== 'number' || typeof loraAlpha !== 'number') throw new FormatError(`${ADAPTER_CONFIG}: "r" and "lora_alpha" must be numbers`);
  const rankPattern = (config.rank_pattern ?? {}) as Record<string, unknown>;
  const alphaPattern = (config.alpha_pattern ?? {}) as Record<string, unknown>;

  const ckpt = await openCheckpoint(join(dir, ADAPTER_WEIGHTS));
  try {
    const factors = new Map<string, { kind: LoraModule['kind']; a?: string; b?: string }>();
    const extras = new Map<string, { bias?: string; magnitude?: string }>();
    const full: string[] = [];
    for (const t of ckpt.tensors) {
      if (!t.name.startsWith(PREFIX)) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${t.name}" does not start with "${PREFIX}"`);
      const extra = /^base_model\.model\.(.+)\.(lora_B\.bias|lora_magnitude_vector)$/.exec(t.name);
      if (extra) {
        const e = extras.get(extra[1]!) ?? {};
        if (extra[2] === 'lora_B.bias') e.bias = t.name;
        else e.magnitude = t.name;
        extras.set(extra[1]!, e);
        continue;
      }
      const m = /^base_model\.model\.(.+)\.(lora_A\.weight|lora_B\.weight|lora_embedding_A|lora_embedding_B)$/.exec(t.name);
      if (!m) {
        full.push(t.name);
        continue;
      }
      const [, module, which] = m as unknown as [string, string, string];
      const kind = which.startsWith('lora_embedding') ? 'embedding' : 'linear';
      const entry = factors.get(module) ?? { kind };
      if (entry.kind !== kind) throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" mixes lora_A/B and lora_embedding_A/B keys`);
      if (which === 'lora_A.weight' || which === 'lora_embedding_A') entry.a = t.name;
      else entry.b = t.name;
      factors.set(module, entry);
    }
    const modules: LoraModule[] = [];
    for (const [module, entry] of factors) {
      if (!entry.a || !entry.b) throw new FormatError(`${ADAPTER_WEIGHTS}: module "${module}" has ${entry.a ? 'A' : 'B'} but no ${entry.a ? 'B' : 'A'} factor`);
      const a = ckpt.info(entry.a);
      const b = ckpt.info(entry.b);
      if (a.shape.length !== 2) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${a.name}" has shape [${a.shape.join(', ')}], expected [r, in]`);
      if (b.shape.length !== 2) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}], expected [out, r]`);
      const rank = a.shape[0]!;
      if (b.shape[1] !== rank) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${b.name}" has shape [${b.shape.join(', ')}] but "${a.name}" has rank ${rank}: expected [${b.shape[0]}, ${rank}]`);
      const configured = lookupPattern(rankPattern, module) ?? r;
      if (configured !== rank) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${a.name}" has rank ${rank} but ${ADAPTER_CONFIG} gives this module r = ${configured}`);
      const mod: LoraModule = {
        module,
        kind: entry.kind,
        rank,
        alpha: lookupPattern(alphaPattern, module) ?? loraAlpha,
        a: await ckpt.readFloat32(a.name),
        b: await ckpt.readFloat32(b.name),
        inFeatures: a.shape[1]!,
        outFeatures: b.shape[0]!,
      };
      const extra = extras.get(module);
      extras.delete(module);
      for (const [field, key] of [['bias', extra?.bias], ['magnitude', extra?.magnitude]] as const) {
        if (!key) continue;
        const info = ckpt.info(key);
        if (info.shape.length !== 1 || info.shape[0] !== mod.outFeatures) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${key}" has shape [${info.shape.join(', ')}], expected [${mod.outFeatures}]`);
        mod[field] = await ckpt.readFloat32(key);
      }
      modules.push(mod);
    }
    for (const [module, e] of extras) throw new FormatError(`${ADAPTER_WEIGHTS}: key "${e.bias ?? e.magnitude}" belongs to no LoRA module "${module}"`);
    const fullWeights: Adapter['fullWeights'] = [];
    for (const key of full) {
      const t = ckpt.info(key);
      fullWeights.push({ name: key.slice(PREFIX.length), dtype: t.dtype, shape: t.shape, data: await ckpt.readFloat32(key) });
    }
    return { config, modules, fullWeights };
  } finally {
    await ckpt.close();
  }
}
