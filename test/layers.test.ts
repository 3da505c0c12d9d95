// The layering of src/, enforced: every import (static, dynamic, `import type`, `export … from`)
// of every src file must go to its own layer or a lower one, and the import graph has no cycle.
//
//   6 cli            src/cli.ts, src/cli/, src/index.ts (the library surface)
//   5 admin          src/admin/        5 lifecycle   src/lifecycle/   (neither imports the other)
//   4 api            src/api.ts (createProxy)
//   3 observability  src/observability/
//   2 core           src/core/
//   1 engine         src/engine/       1 config      src/config/      (neither imports the other)
//   0 leaf           errors.ts, defaults.ts, units.ts, cidr.ts, log.ts (+ log-writer, log-limiter), stats.ts, tls.ts (types), runtime-check.ts, and the two vocabulary
//                    tables core/ending.ts and core/state.ts: importable by every layer, they
//                    import only each other (stats.ts only types of the two tables).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

const LEAVES = new Set([
  'errors.ts',
  'defaults.ts',
  'units.ts',
  'log.ts',
  'log-writer.ts',
  'log-limiter.ts',
  'stats.ts',
  'tls.ts',
  'cidr.ts',
  'runtime-check.ts',
  'core/ending.ts',
  'core/state.ts',
]);

/** Layer name and rank of a file (its path relative to src/). */
function layerOf(file: string): { name: string; rank: number } {
  if (LEAVES.has(file)) return { name: 'leaf', rank: 0 };
  const top = file.includes('/') ? (file.split('/')[0] as string) : file;
  switch (top) {
    case 'engine':
    case 'config':
      return { name: top, rank: 1 };
    case 'core':
      return { name: top, rank: 2 };
    case 'observability':
      return { name: top, rank: 3 };
    case 'api.ts':
      return { name: 'api', rank: 4 };
    case 'admin':
    case 'lifecycle':
      return { name: top, rank: 5 };
    case 'cli.ts':
    case 'cli':
    case 'index.ts':
      return { name: 'cli', rank: 6 };
    default:
      throw new Error(`src/${file} has no layer: add it to test/layers.test.ts`);
  }
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [relative(SRC, join(dir, e.name))]
        : [],
  );
}

/** The project files `file` imports (relative specifiers only), as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gms),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
  ].map((m) => m[1] as string);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(SRC, join(SRC, dirname(file), s)));
}

const files = sourceFiles(SRC).sort();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('the import reader sees the imports (a check of the check)', () => {
  assert.ok(graph.get('api.ts')?.includes('config/load.ts'), 'a dynamic import');
  assert.ok(graph.get('api.ts')?.includes('core/proxy.ts'), 'a static import');
  assert.ok(graph.get('index.ts')?.includes('api.ts'), 'an export … from');
});

test('every import goes to the same layer or a lower one', () => {
  const wrong: string[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file);
    for (const to of imports) {
      assert.ok(graph.has(to), `src/${file} imports src/${to}, which does not exist`);
      const target = layerOf(to);
      const ok = target.rank < from.rank || target.name === from.name;
      if (!ok) wrong.push(`src/${file} (${from.name}) -> src/${to} (${target.name})`);
    }
  }
  assert.deepEqual(wrong, [], `imports against the layering:\n${wrong.join('\n')}`);
});

test('the import graph has no cycle', () => {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string): void => {
    if (onPath.has(file)) {
      const cycle = [...path.slice(path.indexOf(file)), file];
      assert.fail(`import cycle: ${cycle.map((f) => `src/${f}`).join(' -> ')}`);
    }
    if (done.has(file)) return;
    onPath.add(file);
    path.push(file);
    for (const to of graph.get(file) ?? []) visit(to);
    path.pop();
    onPath.delete(file);
    done.add(file);
  };
  for (const file of files) visit(file);
});

test('stats.ts imports only types of the vocabulary tables (no runtime import at all)', () => {
  const text = readFileSync(join(SRC, 'stats.ts'), 'utf8');
  const imports = [...text.matchAll(/^import\b[^;]*;/gm)].map((m) => m[0]);
  for (const line of imports) assert.match(line, /^import type /, line);
  for (const to of graph.get('stats.ts') ?? []) {
    assert.ok(['core/ending.ts', 'core/state.ts', 'tls.ts'].includes(to), `stats.ts imports ${to}`);
  }
  assert.deepEqual(graph.get('tls.ts'), [], 'tls.ts (types only) imports nothing');
  assert.deepEqual(graph.get('core/ending.ts'), [], 'core/ending.ts imports nothing');
});
