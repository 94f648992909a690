/**
 * The Python that holds deltarank against the real thing (torch, transformers, peft, safetensors):
 * `$DELTARANK_TEST_PYTHON`, else the repository's `.venv` that `.ci/run` makes. Tests that need it
 * skip with the one line `NO_PYTHON` where neither has those packages.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const REQUIRED = ['torch', 'transformers', 'peft', 'safetensors'];

function findPython(): { python: string; versions: Record<string, string> } | { reason: string } {
  const candidates = [process.env['DELTARANK_TEST_PYTHON'], `${REPO}.venv/bin/python`].filter((p): p is string => !!p);
  for (const python of candidates) {
    if (!existsSync(python)) continue;
    try {
      const out = execFileSync(
        python,
        [
          '-c',
          `import json, ${REQUIRED.join(', ')}; print(json.dumps({m: __import__(m).__version__ for m in ${JSON.stringify(REQUIRED)}}))`,
        ],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
          timeout: 120_000,
        },
      );
      return { python, versions: JSON.parse(out) as Record<string, string> };
    } catch {
      // not this one: missing packages or a broken interpreter
    }
  }
  return {
    reason: `no Python with ${REQUIRED.join(', ')} (.ci/run makes .venv; or set DELTARANK_TEST_PYTHON): checks against PEFT and transformers not run`,
  };
}

const found = findPython();

/** The interpreter, or undefined where none has the packages. */
export const PYTHON: string | undefined = 'python' in found ? found.python : undefined;
/** Versions of torch, transformers, peft and safetensors of that interpreter. */
export const PYTHON_VERSIONS: Record<string, string> = 'versions' in found ? found.versions : {};
/** The skip reason for `test(..., { skip: NO_PYTHON })`, or false. */
export const NO_PYTHON: string | false = 'reason' in found ? found.reason : false;

/**
 * Run `script` (a path) with `args` under that Python on one thread (tests run side by side) and
 * parse the last line of its stdout as JSON. A non-zero exit rejects with its stderr.
 */
export function runPython<T = unknown>(script: string, args: string[] = [], { timeoutMs = 240_000 } = {}): Promise<T> {
  if (!PYTHON) return Promise.reject(new Error(NO_PYTHON || 'no Python'));
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, ...args], {
      env: {
        ...process.env,
        OMP_NUM_THREADS: '1',
        MKL_NUM_THREADS: '1',
        TOKENIZERS_PARALLELISM: 'false',
        HF_HUB_OFFLINE: '1',
        TRANSFORMERS_VERBOSITY: 'error',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} exited ${code}:\n${stderr.slice(-4000)}`));
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script}: last stdout line is not JSON: ${last.slice(0, 200)}\n${stderr.slice(-2000)}`));
      }
    });
  });
}
