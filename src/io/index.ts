/** Safetensors I/O, dtype codecs, checkpoint discovery and PEFT adapters. Imports nothing internal but errors. */

export * from './atomic.js';
export * from './checkpoint.js';
export * from './dtypes.js';
export * from './layouts.js';
export * from './peft.js';
export * from './peft-reader.js';
export * from './safetensors-reader.js';
export * from './safetensors-writer.js';
