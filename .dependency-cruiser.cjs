/**
 * Import rules of deltarank's layers, checked by `npm run lint` (depcruise).
 *
 * The layers, lowest first. A module may import its own layer and any layer below it, never one
 * above: io, svd → model → analyze → extract → compare → report → cli. `src/errors.ts`,
 * `src/version.ts` and `src/yield.ts` sit under every layer; `src/index.ts` is the library's front door.
 * docs/ARCHITECTURE.md explains why the order is what it is.
 *
 * `npm run lint:layers` cruises the JavaScript tsc emits for src/ (under build/layers/), not the
 * TypeScript: dependency-cruiser parses TypeScript only through the compiler API of typescript < 7,
 * and this project builds with typescript 7. The emitted imports are the value imports; `import type`
 * lines are erased, so a type-only import across layers goes unchecked (none exists today).
 * Unused files are knip's business (`npm run lint:unused`).
 */
const LAYERS = [
  // name: the folder under src/; below: the layers it may import (besides errors.ts/version.ts and itself).
  { name: 'io', below: [] },
  { name: 'svd', below: [] },
  { name: 'model', below: ['io', 'svd'] },
  { name: 'synth', below: ['io', 'svd', 'model'] },
  { name: 'analyze', below: ['io', 'svd', 'model'] },
  { name: 'train', below: ['io', 'svd', 'model'] },
  { name: 'extract', below: ['io', 'svd', 'model', 'analyze'] },
  { name: 'compare', below: ['io', 'svd', 'model', 'analyze', 'extract', 'train'] },
  { name: 'report', below: ['io', 'svd', 'model', 'analyze', 'extract', 'compare'] },
  { name: 'cli', below: ['io', 'svd', 'model', 'synth', 'analyze', 'train', 'extract', 'compare', 'report'] },
];
const NAMES = LAYERS.map((l) => l.name);

/** One rule per layer: nothing under src/ outside the layer, its allowed layers and the shared root files. */
const layerRules = LAYERS.map(({ name, below }) => {
  const others = NAMES.filter((n) => n !== name && !below.includes(n));
  return {
    name: `layer-${name}`,
    comment: `src/${name} may import only ${below.length ? below.map((b) => `src/${b}`).join(', ') : 'nothing internal'} besides src/errors.ts, src/version.ts and src/yield.ts`,
    severity: 'error',
    from: { path: `^src/${name}/` },
    to: { path: [`^src/(${others.join('|')})/`, '^src/index\\.ts$'] },
  };
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'root-files-import-nothing',
      comment: 'src/errors.ts, src/version.ts and src/yield.ts sit under every layer, so they import no layer',
      severity: 'error',
      from: { path: '^src/(errors|version|yield)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(errors|version|yield)\\.ts$' },
    },
    {
      name: 'front-door-without-tfjs',
      comment: "src/index.ts ('deltarank') must load without tfjs: train and compare have entry points of their own",
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { path: ['^src/(train|compare|cli)/'] },
    },
    {
      name: 'tfjs-only-in-train',
      comment: 'only src/train imports tfjs (deltarank inspect/analyze/extract never pay for it)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/train/' },
      to: { path: '@tensorflow/' },
    },
    {
      name: 'onnxruntime-only-in-svd',
      comment: 'onnxruntime-node is the GEMM engine of src/svd; other layers call matmul',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/svd/' },
      to: { path: 'onnxruntime-node' },
    },
    {
      name: 'no-circular',
      comment: 'a cycle makes the layers one layer',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-dev-dependencies',
      comment: 'what ships (src → dist) runs on dependencies only; devDependencies are for tests, bench and tooling',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-not-to-tests',
      comment: 'library code does not reach into test/, bench/ or notebooks/',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|notebooks)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing fails at run time',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|reports|runs)/' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
