/** Result of `verify` (the `--json` document). */
import type { ToolInfo } from '../analyze/types.js';

export interface LayerError {
  layer: number;
  /** ‖h_adapter − h_tuned‖ / ‖h_tuned − h_base‖ after this layer, over every token: 0 is the fine-tune, 1 as far as the base. */
  relativeError: number;
  /** ‖h_adapter − h_tuned‖ / ‖h_tuned‖. */
  relativeToTuned: number;
  /** ‖h_tuned − h_base‖ / ‖h_tuned‖: how much the fine-tune moved this layer. */
  tunedChange: number;
  /**
   * Logit lens (final norm and head applied after this layer) on a sample of tokens: mean
   * KL(tuned‖base+adapter) and KL(tuned‖base) there, nats; absent with no lens tokens.
   */
  klAdapter?: number;
  klBase?: number;
}

export interface VerifyResult {
  schemaVersion: 1;
  tool: ToolInfo;
  base: string;
  tuned: string;
  adapter: string | null;
  modelType: string;
  /** The adapter was merged into W (otherwise applied as two factors). */
  merged: boolean;
  sequences: number;
  tokens: number;
  /** Mean per-token KL(tuned ‖ ·) in nats over every position, with the standard error of each mean; recovered = 1 − adapter/base. */
  kl: { adapter: number; base: number; adapterStdErr: number; baseStdErr: number; recovered: number };
  /** Share of positions where the model's top-1 token is the fine-tune's. */
  top1: { adapter: number; base: number };
  /** exp(mean negative log-likelihood of the next token) over every position that has one. */
  perplexity: { base: number; tuned: number; adapter: number };
  /** 1 − Σ‖ẑ_adapter − ẑ_tuned‖² / Σ‖ẑ_tuned − ẑ_base‖² over centred logits ẑ: the share of the fine-tune's logit change the adapter recovers. */
  recovered: number;
  /** Mean KL(tuned ‖ ·) at each position within a sequence. */
  perPosition: { adapter: number[]; base: number[] };
  layers: LayerError[];
  seconds: number;
}
