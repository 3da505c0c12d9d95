// The config file: YAML -> validated config, and every problem of a bad one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigFile, parseConfig, parseConfigYaml } from '../../src/config/load.ts';
import { defaults } from '../../src/defaults.ts';
import { ConfigError, ErrorCode } from '../../src/errors.ts';

const ISSUE_EXAMPLE = `
frontends:
  - name: web
    listen: 127.0.0.1:8080          # several frontends, each its own listener
    backend: app
    maxConnections: 1024
backends:
  - name: app
    balance: roundrobin             # roundrobin | leastconn | source | random
    connectTimeout: 2s
    retries: 2                      # on connect failure, try another server
    healthCheck: { interval: 1s, timeout: 500ms, rise: 2, fall: 2 }
    servers:
      - { name: a, address: 127.0.0.1:9001, weight: 2 }
      - { name: b, address: 127.0.0.1:9002, maxConnections: 100 }
      - { name: c, address: 127.0.0.1:9003, backup: true }
timeouts: { idle: 1h, halfClosed: 30s }
`;

test("the issue's example parses: durations in ms, addresses parsed, defaults filled in", () => {
  const config = parseConfigYaml(ISSUE_EXAMPLE);
  const [web] = config.frontends;
  assert.deepEqual(web, {
    name: 'web',
    listen: { host: '127.0.0.1', port: 8080 },
    backend: 'app',
    maxConnections: 1024,
  });
  const app = config.backends[0];
  assert.ok(app);
  assert.equal(app.connectTimeout, 2000);
  assert.equal(app.queueTimeout, defaults.queueTimeoutMs);
  assert.deepEqual(app.healthCheck, { interval: 1000, timeout: 500, rise: 2, fall: 2 });
  assert.deepEqual(
    app.servers.map((s) => [s.name, s.address.port, s.weight, s.maxConnections, s.backup]),
    [
      ['a', 9001, 2, 0, false],
      ['b', 9002, 1, 100, false],
      ['c', 9003, 1, 0, true],
    ],
  );
  assert.deepEqual(config.timeouts, { idle: 3_600_000, halfClosed: 30_000 });
});

test('a minimal config gets every default from defaults.ts', () => {
  const config = parseConfig({
    frontends: [{ name: 'f', listen: ':8080', backend: 'b' }],
    backends: [{ name: 'b', servers: [{ name: 's', address: 'localhost:9000' }] }],
  });
  const b = config.backends[0];
  assert.ok(b);
  assert.equal(b.balance, defaults.balance);
  assert.equal(b.retries, defaults.retries);
  assert.equal(b.connectTimeout, defaults.connectTimeoutMs);
  assert.equal(b.maxQueued, defaults.maxQueued);
  assert.equal(b.healthCheck, undefined);
  assert.equal(config.frontends[0]?.maxConnections, defaults.maxConnections);
  assert.equal(config.frontends[0]?.listen.host, '::');
  assert.equal(config.bufferSize, defaults.bufferSize);
  // Health check defaults when the section is there but empty.
  const hc = parseConfig({
    frontends: [{ name: 'f', listen: ':8080', backend: 'b' }],
    backends: [{ name: 'b', healthCheck: {}, servers: [{ name: 's', address: ':9000' }] }],
  }).backends[0]?.healthCheck;
  assert.deepEqual(hc, {
    interval: defaults.healthCheckIntervalMs,
    timeout: defaults.healthCheckTimeoutMs,
    rise: defaults.healthCheckRise,
    fall: defaults.healthCheckFall,
  });
});

test('a parsed config is valid input again (what reload gets)', () => {
  const config = parseConfigYaml(ISSUE_EXAMPLE);
  assert.deepEqual(parseConfig(config), config);
});

test('a bad file lists every problem, one `path.to.key: reason` per line', () => {
  const bad = `
frontends:
  - name: web
    listen: nowhere
    backend: ap
    colour: red
  - name: web
    listen: 127.0.0.1:8080
    backend: app
  - name: api
    listen: 127.0.0.1:8080
    backend: app
backends:
  - name: app
    balance: fastest
    connectTimeout: soon
    retries: -1
    healthCheck: { interval: 0, rise: 0 }
    servers:
      - { name: a, address: 127.0.0.1:0, weight: "2" }
      - { name: a }
timeouts: { idle: 1h, halfClosed: 30 s }
`;
  const err = (() => {
    try {
      parseConfigYaml(bad);
    } catch (e) {
      return e;
    }
    assert.fail('accepted a bad config');
  })();
  assert.ok(err instanceof ConfigError);
  assert.equal(err.code, ErrorCode.INVALID_CONFIG);
  const expected = [
    /^frontends\.0\.listen: expected HOST:PORT, got "nowhere"$/,
    /^frontends\.0\.colour: unknown key$/,
    /^frontends\.0\.backend: no backend named "ap"$/,
    /^frontends\.1\.name: duplicate frontend name "web"$/,
    /^frontends\.2\.listen: 127\.0\.0\.1:8080 is already the listen address of frontends\.1$/,
    /^backends\.0\.balance: .*roundrobin.*leastconn.*source.*random/,
    /^backends\.0\.connectTimeout: expected a duration .*"soon"$/,
    /^backends\.0\.retries: expected a whole number from 0 to 100$/,
    /^backends\.0\.healthCheck\.interval: must be more than 0$/,
    /^backends\.0\.healthCheck\.rise: .*>=1/,
    /^backends\.0\.servers\.0\.address: port 0 is not a server port$/,
    /^backends\.0\.servers\.0\.weight: expected number, received string$/,
    /^backends\.0\.servers\.1\.address: required$/,
    /^backends\.0\.servers\.1\.name: duplicate server name "a"$/,
    /^timeouts\.halfClosed: expected a duration .*"30 s"$/,
  ];
  for (const pattern of expected) {
    assert.ok(
      err.problems.some((p) => pattern.test(p)),
      `missing ${pattern}\n${err.problems.join('\n')}`,
    );
  }
  assert.equal(err.problems.length, expected.length, err.problems.join('\n'));
});

test('YAML syntax errors and empty files are config errors too', () => {
  assert.throws(
    () => parseConfigYaml('frontends: [1\nbackends: 2', 'x.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.problems[0] ?? '', /^x\.yaml: .*line \d+/);
      return true;
    },
  );
  assert.throws(
    () => parseConfigYaml(''),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems, ['frontends: required', 'backends: required']);
      return true;
    },
  );
});

test("the repository's switchyard.yaml (the README's run line) is valid", () => {
  const config = loadConfigFile(new URL('../../switchyard.yaml', import.meta.url).pathname);
  assert.equal(config.frontends[0]?.listen.port, 8080);
  assert.equal(config.backends[0]?.servers[0]?.address.port, 9000);
});

test('bounds: timers fit in 2^31-1 ms, connection caps are bounded, halfClosed 0 is accepted', () => {
  const base = {
    frontends: [{ name: 'f', listen: ':8080', backend: 'b' }],
    backends: [{ name: 'b', servers: [{ name: 's', address: '127.0.0.1:9000' }] }],
  };
  const problems = (input: unknown): string[] => {
    try {
      parseConfig(input);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return [...err.problems];
    }
  };
  const over = 2 ** 31;
  const hc = (healthCheck: Record<string, unknown>) => ({
    ...base,
    backends: [{ ...base.backends[0], healthCheck }],
  });
  for (const healthCheck of [
    { interval: over },
    { interval: '25d' },
    { interval: '597h' },
    { timeout: over },
  ]) {
    const found = problems(hc(healthCheck));
    assert.equal(found.length, 1, `${JSON.stringify(healthCheck)}: ${found.join('; ')}`);
  }
  assert.match(
    problems(hc({ interval: '597h' }))[0] ?? '',
    /^backends\.0\.healthCheck\.interval: at most 2147483647 ms/,
  );
  assert.deepEqual(problems(hc({ interval: 2 ** 31 - 1, timeout: '596h' })), []);
  assert.deepEqual(problems({ ...base, timeouts: { idle: over } }), [
    'timeouts.idle: at most 2147483647 ms (about 24.8 days): longer timers overflow',
  ]);
  const frontend = (maxConnections: number) => ({
    ...base,
    frontends: [{ ...base.frontends[0], maxConnections }],
  });
  assert.deepEqual(problems(frontend(1_000_000)), []);
  assert.deepEqual(problems(frontend(1_000_001)), [
    'frontends.0.maxConnections: expected a whole number from 1 to 1000000',
  ]);
  assert.deepEqual(problems(frontend(0)), [
    'frontends.0.maxConnections: expected a whole number from 1 to 1000000',
  ]);
  const halfClosedOff = parseConfig({ ...base, timeouts: { idle: '1h', halfClosed: 0 } });
  assert.deepEqual(halfClosedOff.timeouts, { idle: 3_600_000, halfClosed: 0 });
});

test('PROXY protocol and admission keys: parsed, and errors naming the key', () => {
  const yaml = `
frontends:
  - name: lb
    listen: 127.0.0.1:8443
    backend: app
    proxyProtocol: { accept: v2, from: [10.0.0.0/8, "2001:db8::/32"], timeout: 2s }
    allow: [10.0.0.0/8, "2001:db8::/32"]
    deny: [10.9.0.0/16]
    limits: { perSourceConnections: 100, perSourceRate: 50/s, acceptRate: 5000/s, maxLifetime: 24h }
backends:
  - name: app
    servers:
      - { name: a, address: 10.1.0.5:9000, sendProxy: v2 }
`;
  const config = parseConfigYaml(yaml);
  const f = config.frontends[0];
  assert.deepEqual(f?.proxyProtocol, {
    accept: 'v2',
    from: ['10.0.0.0/8', '2001:db8::/32'],
    timeout: 2000,
  });
  assert.deepEqual(f?.limits, {
    perSourceConnections: 100,
    perSourceRate: { perSecond: 50 },
    acceptRate: { perSecond: 5000 },
    maxLifetime: 86_400_000,
  });
  assert.equal(config.backends[0]?.servers[0]?.sendProxy, 'v2');
  assert.deepEqual(parseConfig(config), config, 'a parsed config is valid input again');
  assert.equal(
    parseConfigYaml(
      yaml.replace(
        'proxyProtocol: { accept: v2, from: [10.0.0.0/8, "2001:db8::/32"], timeout: 2s }',
        'proxyProtocol: {}',
      ),
    ).frontends[0]?.proxyProtocol?.timeout,
    defaults.proxyProtocolTimeoutMs,
  );

  const bad = `
frontends:
  - name: lb
    listen: 127.0.0.1:8443
    backend: app
    from: [10.0.0.0/8]
    allow: [10.0.0.0/33, 10.1.0.0/8, nonsense]
    limits: { perSourceRate: 50, acceptRate: 5000/d }
    proxyProtocol: { accept: v3 }
backends:
  - name: app
    servers:
      - { name: a, address: 10.1.0.5:9000, sendProxy: v3 }
`;
  try {
    parseConfigYaml(bad);
    assert.fail('accepted');
  } catch (e) {
    const err = e as ConfigError;
    const want = [
      /^frontends\.0\.from: trusted PROXY header senders belong in proxyProtocol/,
      /^frontends\.0\.allow\.0: expected a CIDR block .*prefix/,
      /^frontends\.0\.allow\.1: expected a CIDR block .*bits set past/,
      /^frontends\.0\.allow\.2: expected a CIDR block .*not an IPv4 or IPv6/,
      /^frontends\.0\.limits\.perSourceRate: expected a rate such as 50\/s/,
      /^frontends\.0\.limits\.acceptRate: expected a rate such as 50\/s, 600\/m or 10\/h, got "5000\/d"/,
      /^frontends\.0\.proxyProtocol\.accept: /,
      /^backends\.0\.servers\.0\.sendProxy: /,
    ];
    for (const pattern of want) {
      assert.ok(
        err.problems.some((p) => pattern.test(p)),
        `missing ${pattern}\n${err.problems.join('\n')}`,
      );
    }
    assert.equal(err.problems.length, want.length, err.problems.join('\n'));
  }
  // `from` on a frontend that has proxyProtocol, but outside it: named too.
  assert.throws(
    () => parseConfigYaml(yaml.replace('    allow:', '    from: [10.0.0.0/8]\n    allow:')),
    (e: ConfigError) =>
      e.problems.length === 1 &&
      /^frontends\.0\.from: .*proxyProtocol: \{ from/.test(e.problems[0] ?? ''),
  );
});

test('PROXY protocol with TLS on the same side is refused with the key named (not supported yet)', () => {
  const config = {
    frontends: [
      {
        name: 'web',
        listen: '127.0.0.1:0',
        backend: 'app',
        proxyProtocol: { accept: 'v2' },
        tls: { certificates: [{ cert: '/c.pem', key: '/k.pem' }] },
      },
    ],
    backends: [
      {
        name: 'app',
        servers: [{ name: 'a', address: '127.0.0.1:9', sendProxy: 'v2', tls: { ca: '/ca.pem' } }],
      },
    ],
  };
  let problems: readonly string[] = [];
  try {
    parseConfig(config);
  } catch (e) {
    problems = (e as ConfigError).problems;
  }
  assert.ok(
    problems.some((p) =>
      p.startsWith('frontends.0.proxyProtocol: not supported together with tls'),
    ),
  );
  assert.ok(
    problems.some((p) =>
      p.startsWith('backends.0.servers.0.sendProxy: not supported together with tls'),
    ),
  );
});

test('sni: rules parsed (lower case), handshakeTimeout; errors name the key', () => {
  const yaml = `
frontends:
  - name: passthrough
    listen: 127.0.0.1:8443
    backend: default_pool
    proxyProtocol: { accept: v2 }
    handshakeTimeout: 2s
    sni:
      - { match: A.Example.com, backend: pool_a }
      - { match: "*.b.example.com", backend: pool_b }
backends:
  - { name: default_pool, servers: [{ name: d, address: 127.0.0.1:9001 }] }
  - { name: pool_a, servers: [{ name: a, address: 127.0.0.1:9002 }] }
  - { name: pool_b, servers: [{ name: b, address: 127.0.0.1:9003 }] }
`;
  const f = parseConfigYaml(yaml).frontends[0];
  assert.deepEqual(f?.sni, [
    { match: 'a.example.com', backend: 'pool_a' },
    { match: '*.b.example.com', backend: 'pool_b' },
  ]);
  assert.equal(f?.handshakeTimeout, 2000);
  assert.equal(
    parseConfigYaml(yaml.replace('    handshakeTimeout: 2s\n', '')).frontends[0]?.handshakeTimeout,
    undefined,
  );

  const problemsOf = (config: unknown): readonly string[] => {
    try {
      parseConfig(config);
    } catch (e) {
      assert.equal((e as ConfigError).code, ErrorCode.INVALID_CONFIG);
      return (e as ConfigError).problems;
    }
    return [];
  };
  const base = {
    name: 'p',
    listen: '127.0.0.1:0',
    backend: 'app',
  };
  const backends = [{ name: 'app', servers: [{ name: 'a', address: '127.0.0.1:9' }] }];
  const bad = problemsOf({
    frontends: [
      {
        ...base,
        sni: [
          { match: 'a.*.com', backend: 'app' },
          { match: '*', backend: 'app' },
          { match: 'x.example.com', backend: 'nope' },
          { match: 'X.example.com', backend: 'app' },
          { match: 'bad name', backend: 'app' },
        ],
      },
      { ...base, name: 'q', handshakeTimeout: '1s' },
      {
        ...base,
        name: 't',
        sni: [{ match: 'a.example.com', backend: 'app' }],
        tls: { certificates: [{ cert: '/c.pem', key: '/k.pem' }] },
      },
      { ...base, name: 'e', sni: [] },
    ],
    backends,
  });
  const expect = [
    /^frontends\.0\.sni\.0\.match: expected a server name such as a\.example\.com or \*\.example\.com, got "a\.\*\.com"/,
    /^frontends\.0\.sni\.1\.match: expected a server name/,
    /^frontends\.0\.sni\.2\.backend: no backend named "nope"/,
    /^frontends\.0\.sni\.3\.match: "x\.example\.com" is already frontends\.0\.sni\.2/,
    /^frontends\.0\.sni\.4\.match: expected a server name/,
    /^frontends\.1\.handshakeTimeout: only for a frontend with sni/,
    /^frontends\.2\.sni: not together with tls/,
    /^frontends\.3\.sni: at least one rule is needed/,
  ];
  for (const re of expect)
    assert.ok(
      bad.some((p) => re.test(p)),
      `${re} in\n${bad.join('\n')}`,
    );
  assert.equal(bad.length, expect.length, bad.join('\n'));
});
