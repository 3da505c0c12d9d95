// Where the admin server binds: loopback unless a host is given; config and command line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseObserveArgs, withObserveArgs } from '../../src/cli/observe-args.ts';
import { parseConfig } from '../../src/config/load.ts';
import { type ConfigError, ErrorCode } from '../../src/errors.ts';

const base = {
  frontends: [{ name: 'web', listen: '127.0.0.1:0', backend: 'app' }],
  backends: [{ name: 'app', servers: [{ name: 'a', address: '127.0.0.1:1' }] }],
};

test('admin.listen: a port alone or :PORT binds 127.0.0.1; a host is kept', () => {
  for (const [listen, want] of [
    [9100, { host: '127.0.0.1', port: 9100 }],
    ['9100', { host: '127.0.0.1', port: 9100 }],
    [':9100', { host: '127.0.0.1', port: 9100 }],
    ['0.0.0.0:9100', { host: '0.0.0.0', port: 9100 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
  ] as const) {
    assert.deepEqual(
      parseConfig({ ...base, admin: { listen, token: 't' } }).admin?.listen,
      want,
      String(listen),
    );
  }
  assert.equal(parseConfig(base).admin, undefined, 'off unless configured');
});

test('admin config errors name the key', () => {
  assert.throws(
    () => parseConfig({ ...base, admin: { listen: 'nowhere', tokn: 'x' } }),
    (err: ConfigError) => {
      assert.equal(err.code, ErrorCode.INVALID_CONFIG);
      assert.ok(err.problems.some((p) => p.startsWith('admin.listen: expected HOST:PORT')));
      assert.ok(err.problems.some((p) => p.includes('tokn')));
      return true;
    },
  );
});

test('--admin takes its token from SWITCHYARD_ADMIN_TOKEN; --access-log must not be empty', () => {
  assert.deepEqual(parseObserveArgs('9100', undefined, { SWITCHYARD_ADMIN_TOKEN: 't' }), {
    admin: { listen: { host: '127.0.0.1', port: 9100 }, token: 't' },
  });
  assert.deepEqual(parseObserveArgs(undefined, 'stdout', {}), { accessLog: 'stdout' });
  assert.throws(
    () => parseObserveArgs('nope', undefined, {}),
    (err: { code: string }) => err.code === ErrorCode.INVALID_ARGUMENT,
  );
  assert.throws(
    () => parseObserveArgs(undefined, '', {}),
    (err: { code: string }) => err.code === ErrorCode.INVALID_ARGUMENT,
  );
});

test('--admin moves the server and keeps the config token; the environment token overrides it', () => {
  const config = parseConfig({ ...base, admin: { listen: '9100', token: 'from-config' } });
  const moved = withObserveArgs(config, parseObserveArgs('9200', undefined, {}));
  assert.deepEqual(moved.admin, {
    listen: { host: '127.0.0.1', port: 9200 },
    token: 'from-config',
  });
  const env = { SWITCHYARD_ADMIN_TOKEN: 'from-env' };
  const overridden = withObserveArgs(config, parseObserveArgs('9200', undefined, env));
  assert.equal(overridden.admin?.token, 'from-env');
  const none = withObserveArgs(parseConfig(base), parseObserveArgs('9200', undefined, {}));
  assert.deepEqual(none.admin, { listen: { host: '127.0.0.1', port: 9200 } });
});

test('admin beyond loopback needs a token: the config error names admin.token', () => {
  for (const listen of ['0.0.0.0:9100', '[::]:9100', '10.1.2.3:9100', 'admin.example:9100']) {
    assert.throws(
      () => parseConfig({ ...base, admin: { listen } }),
      (err: ConfigError) => {
        assert.equal(err.code, ErrorCode.INVALID_CONFIG);
        assert.equal(err.problems.length, 1, err.problems.join('\n'));
        assert.match(
          err.problems[0] ?? '',
          /^admin\.token: required: .* is not a loopback address$/,
        );
        return true;
      },
      listen,
    );
  }
  for (const listen of ['9100', '127.0.0.2:9100', '[::1]:9100', 'localhost:9100']) {
    assert.equal(parseConfig({ ...base, admin: { listen } }).admin?.token, undefined, listen);
  }
  // The command line: --admin beyond loopback without SWITCHYARD_ADMIN_TOKEN nor a config token.
  assert.throws(
    () => withObserveArgs(parseConfig(base), parseObserveArgs('0.0.0.0:9100', undefined, {})),
    (err: { code: string; message: string }) =>
      err.code === ErrorCode.INVALID_ARGUMENT && /SWITCHYARD_ADMIN_TOKEN/.test(err.message),
  );
  const withToken = parseConfig({ ...base, admin: { listen: '9100', token: 'c' } });
  assert.equal(
    withObserveArgs(withToken, parseObserveArgs('0.0.0.0:9100', undefined, {})).admin?.token,
    'c',
  );
});

test('admin.allowedHosts takes names or *; allowChangesWithoutToken a boolean', () => {
  const admin = parseConfig({
    ...base,
    admin: { listen: 9100, allowedHosts: ['admin.example', '*'], allowChangesWithoutToken: true },
  }).admin;
  assert.deepEqual(admin?.allowedHosts, ['admin.example', '*']);
  assert.equal(admin?.allowChangesWithoutToken, true);
  assert.throws(
    () =>
      parseConfig({
        ...base,
        admin: { listen: 9100, allowedHosts: ['admin.example:9100'], allowChangesWithoutToken: 1 },
      }),
    (err: ConfigError) => {
      assert.ok(
        err.problems.some((p) => p.startsWith('admin.allowedHosts.0: expected a host name')),
        err.problems.join('\n'),
      );
      assert.ok(err.problems.some((p) => p.startsWith('admin.allowChangesWithoutToken:')));
      return true;
    },
  );
});
