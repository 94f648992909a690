/**
 * LoRA variants that `train` runs side by side: a name and PEFT's flags. A spec is one or more
 * of `lora` (plain), `dora`, `bias` (lora_bias), and an init (`gaussian`, `pissa`,
 * `pissa_niter_N`, `olora`) joined by "+": "dora", "pissa", "dora+gaussian".
 */
import { UsageError } from '../errors.js';
import { type LoraInit, mutatesBase, parseLoraInit } from './lora-init.js';

export interface LoraVariant {
  /** Run and folder prefix: "lora", "dora", "pissa", "dora+gaussian". */
  name: string;
  useDora: boolean;
  loraBias: boolean;
  init: LoraInit;
}

/** The variant names `--variants` knows, for help texts. */
export const VARIANT_WORDS = ['lora', 'dora', 'bias', 'gaussian', 'pissa', 'pissa_niter_N', 'olora'] as const;

/**
 * "dora+gaussian" → { useDora, init: 'gaussian' }. UsageError for unknown words, two inits, and the
 * combinations PEFT refuses (lora_bias with DoRA or a non-default init) or cannot export as a
 * plain adapter (DoRA with PiSSA/OLoRA: PEFT's conversion keeps A and B only).
 */
export function parseVariant(spec: string): LoraVariant {
  const words = spec
    .split('+')
    .map((w) => w.trim())
    .filter((w) => w !== '');
  if (words.length === 0) throw new UsageError(`empty LoRA variant in "${spec}"`);
  let useDora = false;
  let loraBias = false;
  let init: LoraInit | undefined;
  for (const w of words) {
    if (w === 'lora') continue;
    if (w === 'dora') useDora = true;
    else if (w === 'bias') loraBias = true;
    else {
      let parsed: LoraInit;
      try {
        parsed = parseLoraInit(w);
      } catch {
        throw new UsageError(
          `unknown LoRA variant "${w}" in "${spec}"; known: ${VARIANT_WORDS.join(', ')} (join with +)`,
        );
      }
      if (init !== undefined) throw new UsageError(`LoRA variant "${spec}" names two inits`);
      init = parsed;
    }
  }
  return variantOf({ useDora, loraBias, init: init ?? true });
}

/** The variant of these flags, named canonically ("lora" when none is set), checked as parseVariant checks. */
export function variantOf({
  useDora = false,
  loraBias = false,
  init = true,
}: {
  useDora?: boolean;
  loraBias?: boolean;
  init?: LoraInit;
}): LoraVariant {
  if (loraBias && (useDora || init !== true))
    throw new UsageError(
      'lora_bias works only with plain LoRA at the default init (PEFT refuses it with DoRA and other inits)',
    );
  if (useDora && mutatesBase(init))
    throw new UsageError(`DoRA with ${init} cannot be exported as PEFT's plain conversion, which keeps A and B only`);
  const parts = [...(useDora ? ['dora'] : []), ...(loraBias ? ['bias'] : []), ...(init === true ? [] : [init])];
  const name = parts.length === 0 ? 'lora' : parts[0] === 'bias' ? ['lora', ...parts].join('+') : parts.join('+');
  return { name, useDora, loraBias, init };
}
