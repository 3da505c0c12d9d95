// Real ClientHellos, captured from node:tls by a plain server, for tests that need the bytes.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first bytes a node:tls client sends (its ClientHello): `servername` as SNI (none: no SNI),
 * `alpn` offered (a long list makes a large ClientHello). Read until the client pauses 200 ms.
 */
export async function captureHello(servername?: string, alpn?: string[]): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = once(server, 'connection').then(async ([socket]: net.Socket[]) => {
    const s = socket as net.Socket;
    const chunks: Buffer[] = [];
    for (;;) {
      const more = await Promise.race([once(s, 'data'), sleep(200)]);
      if (!more) break;
      chunks.push((more as Buffer[])[0] as Buffer);
    }
    s.destroy();
    return Buffer.concat(chunks);
  });
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    ...(servername ? { servername } : {}),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

/** ALPN names adding up to about `bytes`: a large ClientHello without changing anything else. */
export function longAlpn(bytes: number): string[] {
  return Array.from({ length: Math.ceil(bytes / 201) }, (_, i) => `p${i}`.padEnd(200, 'x'));
}
