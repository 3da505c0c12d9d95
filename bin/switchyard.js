#!/usr/bin/env node
// The `switchyard` command. Written to parse and run on any Node that loads ES modules (ES2015
// syntax only: no `?.`, no `??`), so that a Node outside package.json's `engines` gets one line
// and exit 2 instead of a stack trace from the compiled code (dist/, loaded after the check).
import { existsSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// `engines.node` is kept as `>=X.Y.Z`, the one form checked here.
const minimum = String(pkg.engines.node).replace(/^>=\s*/, '');

/** True when dotted version `found` is below `wanted`. */
function below(found, wanted) {
  const a = found.split('.').map(Number);
  const b = wanted.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) < (b[i] || 0);
  }
  return false;
}

// Bun reports the Node version it implements; it runs its own engine and is not held to it.
if (!process.versions.bun && below(process.versions.node, minimum)) {
  process.stderr.write(
    `switchyard: needs Node >= ${minimum}; this is Node ${process.versions.node} (${process.execPath})\n`,
  );
  process.exit(2);
}

/**
 * The package has dist/ (built when it is packed); a checkout before `npm run build` runs the
 * TypeScript sources directly (the pinned Node strips the types).
 */
function load() {
  const dist = new URL('../dist/cli.js', import.meta.url);
  if (existsSync(dist)) return import(dist.href);
  if (!process.versions.bun && !process.features.typescript) {
    return Promise.reject(
      new Error(
        `dist/ is not built (npm run build), and Node ${process.versions.node} cannot run src/`,
      ),
    );
  }
  return import('../src/cli.ts');
}

load()
  .then((cli) => cli.run())
  .then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`switchyard: ${(err instanceof Error && err.stack) || err}\n`);
      process.exit(1);
    },
  );
