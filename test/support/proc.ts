// The test environment (engines, runtimes) and /proc readers for a process's memory and sockets.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${ROOT}node_modules/.bin`;

/** The engines the suite runs against: SWITCHYARD_ENGINES=node,bun (default: node). */
export const ENGINES = (process.env.SWITCHYARD_ENGINES ?? 'node').split(',') as ('node' | 'bun')[];

/** The runtime binary an engine runs on (the pinned ones from node_modules). */
export function runtimeFor(engine: 'node' | 'bun'): string {
  return engine === 'bun' ? `${BIN}/bun` : process.execPath;
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

export function socketInodesOf(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  return inodes;
}

/** TCP sockets in CLOSE_WAIT (state 08) among `inodes`, from /proc/net/tcp and tcp6. */
export function closeWaitAmong(inodes: Set<string>): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '08' && inodes.has(cols[9] ?? '')) n++;
    }
  }
  return n;
}
