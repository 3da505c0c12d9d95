// `npm run build:exe`: switchyard as one file that runs with no Node installed,
// `switchyard-<platform>-<arch>` in the repository root. Node's single executable applications:
// the pinned Bun bundles bin/switchyard-exe.ts and every module it imports (the dependencies
// included) into one CommonJS script, and the pinned Node's `--build-sea` writes a copy of
// itself with that script and the files the code reads at run time (package.json for
// --version, uPlot for the stats page) as assets. About 10 s here; 144 MiB (45 MiB gzipped).
// The bundler writes each module's import.meta.url as its path on this machine: the three
// modules that read files by it ask src/runtime-check.ts first and take an asset (version,
// admin server) or refuse (handoff), so no path of the build machine is read at run time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUTPUT = join(ROOT, `switchyard-${process.platform}-${process.arch}`);
const require = createRequire(import.meta.url);
/** What the code reads as files, by the name it asks for (src/runtime-check.ts). */
const ASSETS = {
  'package.json': join(ROOT, 'package.json'),
  'uplot/dist/uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uplot/dist/uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};

const work = mkdtempSync(join(tmpdir(), 'switchyard-exe-'));
try {
  const main = join(work, 'main.cjs');
  // The pinned Bun (a devDependency) as the bundler.
  execFileSync(
    join(ROOT, 'node_modules', '.bin', 'bun'),
    [
      'build',
      join(ROOT, 'bin/switchyard-exe.ts'),
      '--target=node',
      '--format=cjs',
      '--outfile',
      main,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const config = join(work, 'sea.json');
  writeFileSync(
    config,
    JSON.stringify({
      main,
      output: OUTPUT,
      disableExperimentalSEAWarning: true,
      // Compiled once here rather than at every start: --version 0.12 s instead of 0.19 s (median
      // of 10 runs each, interleaved, on this loaded 2-CPU machine).
      useCodeCache: true,
      assets: ASSETS,
    }),
  );
  execFileSync(process.execPath, ['--build-sea', config], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
const mib = statSync(OUTPUT).size / 2 ** 20;
process.stdout.write(`${OUTPUT}: ${mib.toFixed(1)} MiB (node ${process.versions.node})\n`);
