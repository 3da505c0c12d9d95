// Every number stats() returns is declared once in src/stats.ts: a leaf with no declaration (or
// of another kind than declared) fails here, and the worker sum of one report is that report
// (the aggregation derived from the declarations drops nothing).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sumStats } from '../src/core/aggregate.ts';
import { createProxy } from '../src/index.ts';
import { createLogger } from '../src/log.ts';
import {
  type Declaration,
  type Declarations,
  PROCESS_STATS,
  STATS,
  type SwitchyardStats,
} from '../src/stats.ts';
import { makeCa, makeCert, tempDir, writePem } from './support/certs.ts';
import { waitFor } from './support/clients.ts';
import { startNamedServer, whoAnswers } from './support/servers.ts';

type Tree = Record<string, unknown>;

/** The paths of `stats` that no declaration describes, or that are not of the declared kind. */
function undeclared(stats: SwitchyardStats): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(stats)) {
    const entity = Object.hasOwn(STATS, key) ? STATS[key as keyof typeof STATS] : undefined;
    if (entity === undefined) out.push(key);
    else {
      for (const [name, entry] of Object.entries(value)) {
        check(entity.of, entry as unknown as Tree, `${key}.${name}`, out);
      }
    }
  }
  return out;
}

function check(decls: Declarations, value: Tree, path: string, out: string[]): void {
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}.${key}`;
    const d: Declaration | undefined = Object.hasOwn(decls, key) ? decls[key] : undefined;
    if (d === undefined) out.push(at);
    else if ('group' in d) check(d.group, v as Tree, at, out);
    else if ('list' in d) {
      if (!Array.isArray(v)) out.push(`${at} (not a list)`);
      else for (const [i, e] of (v as Tree[]).entries()) check(d.list, e, `${at}.${i}`, out);
    } else if ('keys' in d) {
      for (const [k, n] of Object.entries(v as Tree)) {
        if (d.also !== undefined && Object.hasOwn(d.also, k)) check(d.also, { [k]: n }, at, out);
        else if (typeof n !== 'number') out.push(`${at}.${k} (not a number)`);
      }
    } else {
      const want = { histogram: 'object', flag: 'boolean', text: 'string' }[d.kind as string];
      if (typeof v !== (want ?? 'number')) out.push(`${at} (not a ${d.kind})`);
    }
  }
}

test("every leaf of a running proxy's stats() is declared, and one report sums to itself", async (t) => {
  const a = await startNamedServer(t, 'a');
  const ca = await makeCa();
  const cert = writePem(tempDir(t), 'a', await makeCert(ca, ['a.example.com']));
  const proxy = await createProxy(
    {
      frontends: [
        { name: 'web', listen: '127.0.0.1:0', backend: 'app' },
        {
          name: 'https',
          listen: '127.0.0.1:0',
          backend: 'app',
          tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] },
        },
      ],
      backends: [
        {
          name: 'app',
          healthCheck: { interval: '1s' },
          servers: [
            { name: 'a', address: `127.0.0.1:${a.port}`, maxConnections: 5 },
            { name: 'b', address: '127.0.0.1:1', backup: true },
          ],
        },
      ],
    },
    { log: createLogger('silent'), strictStates: true },
  );
  t.after(() => proxy.close(true));
  assert.equal(await whoAnswers(proxy.addresses().web?.port as number), 'a');
  // Every kind of leaf is there to be checked: keyed counts, histograms, a list of certificates.
  const closed = () => Object.values(proxy.stats().frontends.web?.closed ?? {}).length;
  await waitFor(() => closed() > 0, 5000, 'the connection counted as closed');
  const stats = proxy.stats();
  assert.equal(stats.frontends.https?.tlsCertificates?.length, 1);
  assert.ok(stats.frontends.web?.histograms);
  assert.deepEqual(undeclared(stats), []);
  assert.deepEqual(sumStats([stats]), stats);
});

test('a leaf stats() would return with no declaration is named', () => {
  const stats = {
    frontends: {
      web: { accepted: 1, pool: { inUse: 0, spare: 2 }, states: { READING: 1, x: 'y' } },
    },
    backends: { app: { name: 'app', servers: [{ name: 'a', up: 1, lag: 3 }] } },
    workers: {},
  } as unknown as SwitchyardStats;
  assert.deepEqual(undeclared(stats), [
    'frontends.web.pool.spare',
    'frontends.web.states.x (not a number)',
    'backends.app.servers.0.up (not a flag)',
    'backends.app.servers.0.lag',
    'workers',
  ]);
});

test('declarations: each family once, `into` and `minus` name a sibling', () => {
  const families: string[] = [];
  const walk = (decls: Declarations) => {
    for (const d of Object.values(decls)) {
      if ('group' in d) walk(d.group);
      else if ('list' in d) walk(d.list);
      else {
        if (d.metric !== undefined) families.push(d.metric);
        if ('keys' in d) {
          if (d.also) walk(d.also);
        } else {
          for (const sibling of [d.into, d.minus]) {
            if (sibling !== undefined) assert.ok(Object.hasOwn(decls, sibling), sibling);
          }
          if (d.into !== undefined) assert.equal(d.metric, undefined, 'in a family, not its own');
        }
      }
    }
  };
  for (const entity of Object.values(STATS)) {
    if ('info' in entity) families.push(entity.info.metric);
    walk(entity.of);
  }
  walk(PROCESS_STATS);
  assert.deepEqual(families.length, new Set(families).size, families.join(' '));
  assert.ok(families.every((f) => /^switchyard_[a-z_]+$/.test(f)));
});
