import type net from 'node:net';
import type { ListenOptions } from './engine.ts';

/**
 * Binds a `net.Server` (plain, or the TLS listener's) as both engines' Node-side listeners do:
 * dual-stack, SO_REUSEPORT when asked; a bind error rejects as `listenError` makes it.
 */
export function bindServer(
  server: net.Server,
  options: ListenOptions,
  listenError: (err: NodeJS.ErrnoException) => Error,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err)));
    server.listen(
      {
        host: options.host,
        port: options.port,
        backlog: options.backlog,
        reusePort: options.reusePort ?? false,
        ipv6Only: false,
      },
      resolve,
    );
  });
}
