// The single executable's main script (`npm run build:exe` bundles it with everything it
// imports): the command, without bin/switchyard.js's runtime check (the runtime inside is the
// pinned Node) or its search for dist/.
import { run } from '../src/cli.ts';

run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`switchyard: ${(err instanceof Error && err.stack) || err}\n`);
    process.exit(1);
  },
);
