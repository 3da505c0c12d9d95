#!/usr/bin/env node
// The `switchyard` command. The TypeScript is compiled to dist/ by `npm ci` (the prepare script).
import { run } from '../dist/cli.js';

run().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`switchyard: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
