// The `discover` and `resolvers` keys: the issue's example, and every mistake named by its path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigYaml } from '../../src/config/load.ts';
import { defaults } from '../../src/defaults.ts';
import { ConfigError } from '../../src/errors.ts';

const ISSUE_EXAMPLE = `
resolvers: [10.96.0.10:53]            # optional; default: the system's (/etc/resolv.conf)
frontends:
  - { name: web, listen: 127.0.0.1:8080, backend: app }
  - { name: rpc, listen: 127.0.0.1:8081, backend: grpc }
backends:
  - name: app
    discover: { dns: app.default.svc.cluster.local, port: 9000, every: 5s }      # A and AAAA
  - name: grpc
    discover: { srv: _grpc._tcp.grpc.default.svc.cluster.local, every: 5s }     # targets, ports and weights from SRV
    healthCheck: { interval: 2s }
    servers: [{ name: static, address: 10.0.0.1:9000 }]
`;

test("the issue's example parses: discover without servers, or with them; resolvers as addresses", () => {
  const config = parseConfigYaml(ISSUE_EXAMPLE);
  assert.deepEqual(config.resolvers, [{ host: '10.96.0.10', port: 53 }]);
  const [app, grpc] = config.backends;
  assert.deepEqual(app?.discover, {
    dns: 'app.default.svc.cluster.local',
    port: 9000,
    every: 5000,
  });
  assert.deepEqual(app?.servers, []);
  assert.equal(grpc?.discover?.srv, '_grpc._tcp.grpc.default.svc.cluster.local');
  assert.equal(grpc?.servers.length, 1);
  const every = parseConfigYaml(ISSUE_EXAMPLE.replace(', every: 5s }      #', ' }      #'));
  assert.equal(every.backends[0]?.discover?.every, defaults.dnsEveryMs);
});

/** The problems of `backend` (the YAML of one backend's keys) in an otherwise good config. */
function problemsOf(backend: string, top = ''): string[] {
  try {
    parseConfigYaml(
      `${top}frontends: [{ name: web, listen: 127.0.0.1:8080, backend: app }]\nbackends:\n  - { name: app, ${backend} }\n`,
    );
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
}

test('discover mistakes are named by key path', () => {
  assert.deepEqual(problemsOf('balance: roundrobin'), [
    'backends.0.servers: a backend needs at least one server, or discover',
  ]);
  assert.deepEqual(problemsOf('discover: { dns: a.test }'), [
    'backends.0.discover.port: required with dns (the A/AAAA records carry no port)',
  ]);
  assert.deepEqual(problemsOf('discover: { srv: _a._tcp.test, port: 80 }'), [
    'backends.0.discover.port: not with srv: the SRV records carry the ports',
  ]);
  assert.deepEqual(problemsOf('discover: { dns: a.test, srv: _a._tcp.test, port: 80 }'), [
    'backends.0.discover.srv: give either dns (with port) or srv',
  ]);
  assert.deepEqual(problemsOf('discover: { every: 5s }'), [
    'backends.0.discover.dns: give either dns (with port) or srv',
  ]);
  assert.deepEqual(problemsOf('discover: { dns: a.test, port: 80, every: 100ms }'), [
    'backends.0.discover.every: at least 1s',
  ]);
  assert.deepEqual(problemsOf('discover: { dns: "a b.test", port: 80 }'), [
    'backends.0.discover.dns: expected a DNS name such as app.default.svc.cluster.local',
  ]);
  assert.deepEqual(problemsOf('discover: { dns: a.test, port: 80, ttl: 3 }'), [
    'backends.0.discover.ttl: unknown key',
  ]);
});

test('resolvers must be IP:PORT', () => {
  const good = 'discover: { dns: a.test, port: 80 }';
  assert.deepEqual(problemsOf(good, 'resolvers: ["[::1]:53", 127.0.0.1:5353]\n'), []);
  assert.deepEqual(problemsOf(good, 'resolvers: [dns.example:53]\n'), [
    'resolvers.0: expected an IP address and port, e.g. 10.96.0.10:53',
  ]);
  assert.deepEqual(problemsOf(good, 'resolvers: [10.0.0.1]\n'), [
    'resolvers.0: expected HOST:PORT, got "10.0.0.1"',
  ]);
  assert.deepEqual(problemsOf(good, 'resolvers: []\n'), [
    'resolvers: Too small: expected array to have >=1 items',
  ]);
});
