// One large transfer, direct and through switchyard (each engine), side by side.
//
//   node bench/transfer.ts [--gib 1] [--rounds 3]
//
// A sink counts bytes and times them from the first to the last; a sender writes GiB of data in
// 256 KiB writes. The proxy is pinned to CPU 1, sink and sender to CPU 0. Prints throughput and
// the proxy's CPU time (user + sys from /proc) per GiB, per round, then the medians.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Child roles: `--role sink PORT` or `--role send PORT GIB`.
if (process.argv[2] === '--role') {
  const gib = Number(process.argv[5] ?? '1');
  await role(process.argv[3] as string, Number(process.argv[4]), Math.round(gib * 1024 ** 3));
  process.exit(0);
}

const { values } = parseArgs({
  options: { gib: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' } },
});
const bytes = Math.round(Number(values.gib) * 1024 ** 3);
const rounds = Number(values.rounds);

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function pinned(cpu: number, args: string[], stdio: 'pipe' | 'ignore' = 'ignore'): ChildProcess {
  const child = spawn('taskset', ['-c', String(cpu), ...args], {
    stdio: ['ignore', stdio, 'ignore'],
  });
  children.push(child);
  return child;
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const me = fileURLToPath(import.meta.url);
const sinkPort = await freePort();
const sink = pinned(0, [process.execPath, me, '--role', 'sink', String(sinkPort)], 'pipe');
const results: string[] = [];
(sink.stdout as NodeJS.ReadableStream).on('data', (d) =>
  results.push(...String(d).trim().split('\n')),
);
await new Promise((r) => setTimeout(r, 300));

const contenders: { name: string; port: number; pid: number }[] = [
  { name: 'direct', port: sinkPort, pid: 0 },
];
for (const engine of ['node', 'bun']) {
  const port = await freePort();
  const proxy = pinned(1, [
    process.execPath,
    `${ROOT}bin/switchyard.js`,
    '--engine',
    engine,
    '--listen',
    `127.0.0.1:${port}`,
    '--backend',
    `127.0.0.1:${sinkPort}`,
    '--log-level',
    'warn',
  ]);
  await new Promise((r) => setTimeout(r, 1500));
  // taskset execs the runtime, and --engine hands off with execve: the pid is the proxy's.
  contenders.push({ name: `switchyard-${engine}`, port, pid: proxy.pid as number });
}

const table: Record<string, { mibps: number[]; cpuMsPerGib: number[] }> = {};
for (let round = 0; round < rounds; round++) {
  for (const c of contenders) {
    const before = c.pid ? cpuMs(c.pid) : 0;
    const sender = pinned(0, [
      process.execPath,
      me,
      '--role',
      'send',
      String(c.port),
      String(values.gib),
    ]);
    await once(sender, 'exit');
    await new Promise((r) => setTimeout(r, 200));
    const after = c.pid ? cpuMs(c.pid) : 0;
    const line = JSON.parse(results.shift() ?? '{}');
    table[c.name] ??= { mibps: [], cpuMsPerGib: [] };
    const row = table[c.name] as { mibps: number[]; cpuMsPerGib: number[] };
    row.mibps.push(line.MiBps);
    if (c.pid) row.cpuMsPerGib.push((after - before) / (bytes / 1024 ** 3));
    console.log(
      `round ${round + 1} ${c.name}: ${line.MiBps.toFixed(0)} MiB/s${c.pid ? `, proxy CPU ${after - before} ms` : ''}`,
    );
  }
}
const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log('\n| path | MiB/s (median) | proxy CPU ms per GiB (median) |\n| --- | ---: | ---: |');
for (const [name, row] of Object.entries(table)) {
  const cpu = row.cpuMsPerGib.length ? median(row.cpuMsPerGib).toFixed(0) : '—';
  console.log(`| ${name} | ${median(row.mibps).toFixed(0)} | ${cpu} |`);
}
process.exit(0);

/** The sink and the sender, run as separate processes so each can be pinned. */
async function role(kind: string, port: number, total: number): Promise<void> {
  if (kind === 'sink') {
    const server = net.createServer((socket) => {
      let n = 0;
      let started = 0n;
      socket.on('data', (c: Buffer) => {
        if (started === 0n) started = process.hrtime.bigint();
        n += c.length;
      });
      socket.on('end', () => {
        const s = Number(process.hrtime.bigint() - started) / 1e9;
        process.stdout.write(
          `${JSON.stringify({ bytes: n, seconds: s, MiBps: n / 1024 ** 2 / s })}\n`,
        );
        socket.end();
      });
    });
    server.listen(port, '127.0.0.1');
    await new Promise(() => {});
  }
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.resume();
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  await once(socket, 'close');
}
