// `npm run test:interop`'s first step: installs Debian's haproxy when it is missing (as the bench
// does: every step printed, nothing installed that is there already), then the interop tests run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

export const HAPROXY = '/usr/sbin/haproxy';

function run(command: string, args: string[]): boolean {
  console.log(`interop: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

if (import.meta.main) {
  if (existsSync(HAPROXY)) {
    console.log(`interop: ${HAPROXY} is present`);
  } else if (process.getuid?.() !== 0) {
    console.error('interop: haproxy is missing and this is not root: apt-get install -y haproxy');
    process.exit(1);
  } else {
    const lists = existsSync('/var/lib/apt/lists') ? readdirSync('/var/lib/apt/lists') : [];
    if (!lists.some((f) => f.endsWith('_Packages') || f.includes('_Packages.')))
      run('apt-get', ['update']);
    if (!run('apt-get', ['install', '-y', 'haproxy']) || !existsSync(HAPROXY)) {
      console.error('interop: could not install haproxy');
      process.exit(1);
    }
  }
}
