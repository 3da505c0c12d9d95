/**
 * Active health checks of one server, through the engine's connect (so they run on either
 * engine). Every `interval` a probe connects; with `send` it writes those bytes, with `expect` it
 * waits for a reply starting with those bytes; otherwise connecting is the pass. A probe that
 * takes longer than `timeout` fails. Each verdict goes to `report` (the backend counts it and
 * applies rise / fall); the check knows nothing of backends or servers.
 */
import type { HealthCheckConfig } from '../config/schema.ts';
import type { Engine, EngineSocket, SocketEvents } from '../engine/engine.ts';
import { LOCAL_ERROR_CODES } from '../errors.ts';
import type { TlsClientMaterial } from '../tls.ts';
import type { HostPort } from '../units.ts';

/**
 * Told of each check's verdict, with a few words on why. `'local'` is no verdict on the server:
 * the probe could not even start here (LOCAL_ERROR_CODES: out of descriptors, memory, ports).
 */
export type CheckReport = (ok: boolean | 'local', detail: string) => void;

export class HealthCheck {
  readonly engine: Engine;
  /** Read at each probe: a server whose hostname resolves elsewhere is probed there. */
  readonly address: HostPort;
  /** The server's TLS: a check handshakes (and verifies) as a real connection does. */
  readonly tls: TlsClientMaterial | null;
  readonly config: HealthCheckConfig;
  readonly report: CheckReport;
  readonly send: Buffer | null;
  readonly expect: Buffer | null;
  /** The probe in flight, if any: one at a time per server. */
  probe: Probe | null = null;
  private interval: ReturnType<typeof setInterval> | undefined;

  /**
   * `proxyHeader`: for a server that expects a PROXY header (sendProxy), the one a check sends
   * first (v2 LOCAL or v1 UNKNOWN: the proxy's own connection, no client).
   */
  constructor(
    engine: Engine,
    address: HostPort,
    tls: TlsClientMaterial | null,
    config: HealthCheckConfig,
    report: CheckReport,
    proxyHeader: Buffer | null = null,
  ) {
    this.engine = engine;
    this.address = address;
    this.tls = tls;
    this.config = config;
    this.report = report;
    const send = config.send === undefined ? null : Buffer.from(config.send);
    this.send =
      proxyHeader === null
        ? send
        : Buffer.concat(send === null ? [proxyHeader] : [proxyHeader, send]);
    this.expect = config.expect === undefined ? null : Buffer.from(config.expect);
  }

  /**
   * Checks every interval; unref'd, so checks never keep a process alive. With `now`, the first
   * probe goes out at once (a server that joined from DNS need not wait a whole interval).
   */
  start(now = false): void {
    if (this.interval) return;
    this.interval = setInterval(runCheck, this.config.interval, this);
    this.interval.unref();
    if (now) runCheck(this);
  }

  stop(): void {
    clearInterval(this.interval);
    this.interval = undefined;
    this.probe?.finish(null);
  }

  /** A probe ended; null means it was cancelled (no verdict). */
  result(probe: Probe, ok: boolean | 'local' | null, detail: string): void {
    if (this.probe === probe) this.probe = null;
    if (ok !== null) this.report(ok, detail);
  }
}

function runCheck(check: HealthCheck): void {
  if (check.probe !== null) return; // the last one is still running; its timeout will end it
  const probe = new Probe(check);
  check.probe = probe;
  probe.socket = check.engine.connect({
    host: check.address.host,
    port: check.address.port,
    events: probe,
    ...(check.tls !== null ? { tls: check.tls } : {}),
  });
  const timeout = check.config.timeout > 0 ? check.config.timeout : check.config.interval;
  probe.timer = setTimeout(probeTimedOut, timeout, probe);
  probe.timer.unref();
}

function probeTimedOut(probe: Probe): void {
  probe.finish(false, 'check timed out');
}

/** One check's connection. */
class Probe implements SocketEvents {
  readonly check: HealthCheck;
  socket: EngineSocket | null = null;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Reply bytes so far, while an `expect` is pending. */
  private reply: Buffer | null = null;
  private replied = 0;
  private done = false;

  constructor(check: HealthCheck) {
    this.check = check;
  }

  onOpen(): void {
    const { send, expect } = this.check;
    const socket = this.socket as EngineSocket;
    if (send !== null && send.length > 0) {
      // `send` is never modified, so the engine may keep it for a held write.
      const taken = socket.tryWrite(send, send.length);
      if (taken < send.length) socket.writeHeld(send.subarray(taken), send.length - taken);
    }
    if (expect === null) this.finish(true);
    else this.reply = Buffer.alloc(expect.length);
  }

  onData(data: Buffer, n: number): void {
    const expect = this.check.expect;
    const reply = this.reply;
    if (expect === null || reply === null || this.done) return;
    const take = Math.min(n, reply.length - this.replied);
    data.copy(reply, this.replied, 0, take);
    this.replied += take;
    if (!reply.subarray(0, this.replied).equals(expect.subarray(0, this.replied))) {
      this.finish(false, 'unexpected reply');
    } else if (this.replied === expect.length) {
      this.finish(true);
    }
  }

  onDrain(): void {}

  onEnd(): void {
    this.finish(false, 'closed before the expected reply');
  }

  onError(code: string): void {
    if (LOCAL_ERROR_CODES.has(code)) this.finish('local', code);
    else this.finish(false, `check failed (${code})`);
  }

  onClose(): void {
    this.finish(false, 'closed');
  }

  /** Ends the probe once: closes its socket and reports the verdict (null: cancelled). */
  finish(ok: boolean | 'local' | null, detail = 'check passed'): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.check.result(this, ok, detail);
  }
}
