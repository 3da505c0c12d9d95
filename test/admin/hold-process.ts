// A child process that holds many sockets for the stats page test, so that neither the test
// process nor the proxy runs out of descriptors (each may hold at most `ulimit -Hn`):
//
//   node hold-process.ts servers K       K echo servers on 127.0.0.1:0; prints {"ports":[...]}
//   node hold-process.ts clients PORT N  N clients of PORT, opened 200 at a time; prints
//                                        {"opened":N} once every one is connected
//
// Then, on stdin, one command a line, each answered with one JSON line:
//   talk N BYTES   the first N clients each write BYTES bytes (echoed back by the servers)
//   close N        the last N clients close (FIN)
// It exits when stdin closes.
import net from 'node:net';
import { createInterface } from 'node:readline';

const [mode, a, b] = process.argv.slice(2);
const sockets: net.Socket[] = [];
const reply = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

if (mode === 'servers') {
  const ports: number[] = [];
  for (let i = 0; i < Number(a); i++) {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
    ports.push((server.address() as net.AddressInfo).port);
  }
  reply({ ports });
} else if (mode === 'clients') {
  const port = Number(a);
  const n = Number(b);
  for (let done = 0; done < n; ) {
    const batch = Math.min(200, n - done);
    await Promise.all(
      Array.from(
        { length: batch },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => resolve());
            s.on('error', reject);
            s.on('data', () => {});
            sockets.push(s);
          }),
      ),
    );
    done += batch;
  }
  reply({ opened: sockets.length });
} else {
  throw new Error(`usage: hold-process.ts servers K | clients PORT N (got ${mode})`);
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [command, x, y] = line.split(' ');
    if (command === 'talk') {
      const data = Buffer.alloc(Number(y), 0x61);
      for (const s of sockets.slice(0, Number(x))) s.write(data);
      reply({ talked: Number(x) });
    } else if (command === 'close') {
      for (const s of sockets.splice(sockets.length - Number(x))) s.end();
      reply({ closed: Number(x) });
    } else {
      reply({ error: `unknown command ${command}` });
    }
  })
  .on('close', () => process.exit(0));
