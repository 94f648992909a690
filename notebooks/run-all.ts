/** `npm run notebooks [-- --small]`: every walkthrough in order, each in its own process. */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const extra = process.argv.slice(2);
for (const file of readdirSync(new URL('.', import.meta.url))
  .filter((f) => /^\d\d-.*\.ts$/.test(f))
  .sort()) {
  console.log(`\n=== ${file}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(file, import.meta.url).pathname, ...extra], {
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
