// The process log and `--access-log stdout` as people and machines see them: short human lines on
// a terminal (run under a pseudo-terminal with util-linux's `script`), JSON lines through a pipe,
// and `--log-format pretty|json` forcing either. bin/switchyard.js on the compiled dist/.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { ROOT } from '../support/proc.ts';
import { startEchoServer } from '../support/servers.ts';

const BIN = `${ROOT}bin/switchyard.js`;
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;
// biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes of a terminal
const ANSI = /\u001b\[[0-9;]*m/g;
/** `[14:04:45.135] INFO: message {"key":"value"}`, pino-pretty's line. */
const HUMAN =
  /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: frontend default listening on 127\.0\.0\.1:(\d+) \{/;

/** Lines of `stream`, colour codes removed, each resolved in turn by next(). */
function lineReader(stream: NodeJS.ReadableStream) {
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: stream }).on('line', (raw) => {
    const line = raw.replace(ANSI, '').replace(/\r$/, '');
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  return {
    next: (): Promise<string> => {
      const line = lines.shift();
      return line !== undefined
        ? Promise.resolve(line)
        : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

function start(t: TestContext, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  t.after(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // gone already
    }
  });
  return child;
}

/** SIGKILLs every switchyard process (bin/switchyard.js) whose command line holds `marker`. */
function killCommandsWith(marker: string): void {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(BIN) && cmdline.includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone while we looked
    }
  }
}

/** One round trip through the proxy on `port`. */
async function roundTrip(port: number): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.end('hello');
  for await (const _ of socket) {
    // read to the end: the proxy closes the pair once the echo server finished
  }
}

test('on a terminal: short human lines for the process log and the access log', {
  skip: HAS_SCRIPT ? false : 'no `script` (util-linux) for a pseudo-terminal',
}, async (t) => {
  const backend = await startEchoServer(t);
  // `script` runs the command on a pseudo-terminal: stdout and stderr are both the terminal.
  const command = [
    process.execPath,
    BIN,
    '--listen',
    '127.0.0.1:0',
    '--backend',
    `127.0.0.1:${backend.port}`,
    '--access-log',
    'stdout',
  ].join(' ');
  const child = start(t, 'script', ['-qfec', command, '/dev/null']);
  // `script` puts the command in a session of its own on the pseudo-terminal, out of reach of
  // the process-group kill above; the terminal's hang-up is a reload to switchyard, not a stop.
  t.after(() => killCommandsWith(`127.0.0.1:${backend.port}`));
  const out = lineReader(child.stdout as NodeJS.ReadableStream);
  const first = await out.next();
  const m = HUMAN.exec(first);
  assert.ok(m, `a human start line: ${first}`);
  await roundTrip(Number(m[1]));
  const access = await out.next();
  assert.match(
    access,
    /^\[\d\d:\d\d:\d\d\.\d{3}\]: #1 127\.0\.0\.1:\d+ default→default\/default done \d+ ms in 5 B out 5 B fin client$/,
  );
});

test('through a pipe: JSON lines; --log-format pretty forces human lines', async (t) => {
  const backend = await startEchoServer(t);
  const args = ['--listen', '127.0.0.1:0', '--backend', `127.0.0.1:${backend.port}`];

  const json = start(t, process.execPath, [BIN, ...args, '--access-log', 'stdout']);
  const first = JSON.parse(await lineReader(json.stderr as NodeJS.ReadableStream).next());
  assert.equal(first.level, 30);
  const port = Number(/:(\d+)$/.exec(first.msg)?.[1]);
  await roundTrip(port);
  const access = JSON.parse(await lineReader(json.stdout as NodeJS.ReadableStream).next());
  assert.equal(access.type, 'access');
  assert.equal(access.cause, 'done');

  const pretty = start(t, process.execPath, [BIN, ...args, '--log-format', 'pretty']);
  const line = await lineReader(pretty.stderr as NodeJS.ReadableStream).next();
  assert.match(line, HUMAN);

  const bad = spawnSync(process.execPath, [BIN, ...args, '--log-format', 'xml'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--log-format: expected one of auto, json, pretty, got "xml"/);
});
