import { readFileSync } from 'node:fs';

/** The package's own name and version, read once from package.json (one level above dist/ or src/). */
export const TOOL: { name: string; version: string } = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    name: string;
    version: string;
  };
  return { name: pkg.name, version: pkg.version };
})();

/** Current version of every `--json` document this tool writes. */
export const SCHEMA_VERSION = 1 as const;
