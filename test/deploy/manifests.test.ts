// deploy/: no container daemon or cluster here, so the contract is checked on the files. Every
// manifest parses; the probes hit the admin server's routes on its port; the grace period
// outlasts preStop + the drain; the container's arguments and the ConfigMap's config pass
// `switchyard --check`; the Dockerfile runs the pinned runtime as non-root with the config where
// the Deployment mounts it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfigYaml } from '../../src/config/load.ts';
import { parseDuration } from '../../src/units.ts';
import { ROOT } from '../support/proc.ts';

const K8S = join(ROOT, 'deploy', 'kubernetes');

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML, checked field by field
type Doc = any;

function manifests(): Map<string, Doc[]> {
  const out = new Map<string, Doc[]>();
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml'))) {
    const docs = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, [], `${file} parses`);
    out.set(
      file,
      docs.map((d) => d.toJS()),
    );
  }
  return out;
}

const all = manifests();
const byKind = (kind: string): Doc => {
  const found = [...all.values()].flat().filter((d) => d?.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
};

/** `--name value` of an argument list. */
function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs the CLI with `args` (and `env`); resolves with its status and output. */
function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'switchyard.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('every manifest parses, names apiVersion and kind, and kustomization.yaml lists them all', () => {
  const kustomization = all.get('kustomization.yaml')?.[0];
  assert.equal(kustomization?.kind, 'Kustomization');
  const files = [...all.keys()].filter((f) => f !== 'kustomization.yaml').sort();
  assert.deepEqual([...kustomization.resources].sort(), files);
  for (const [file, docs] of all) {
    for (const d of docs) assert.ok(d.apiVersion && d.kind, `${file}: apiVersion and kind`);
  }
});

test('Deployment: 2 replicas, non-root, resources, config from the ConfigMap, probes on the admin routes', () => {
  const deployment = byKind('Deployment');
  const configMap = byKind('ConfigMap');
  const secret = byKind('Secret');
  const spec = deployment.spec.template.spec;
  assert.equal(deployment.spec.replicas, 2);
  assert.equal(spec.securityContext.runAsNonRoot, true);
  assert.ok(spec.securityContext.runAsUser > 0, 'a numeric non-root uid');
  for (const c of spec.containers) {
    for (const k of ['requests', 'limits']) {
      assert.ok(c.resources?.[k]?.cpu && c.resources?.[k]?.memory, `${c.name}: ${k}`);
    }
  }
  const main = spec.containers.find((c: Doc) => c.name === 'switchyard');
  const args: string[] = main.args;
  // The config file is the ConfigMap's key, mounted where --config reads it.
  const volume = spec.volumes.find((v: Doc) => v.configMap?.name === configMap.metadata.name);
  const mount = main.volumeMounts.find((m: Doc) => m.name === volume.name);
  const key = Object.keys(configMap.data)[0] as string;
  assert.equal(flag(args, '--config'), `${mount.mountPath}/${key}`);
  // The admin address: --admin over the config's admin.listen, as the CLI applies it.
  const config = parseConfigYaml(configMap.data[key]);
  const admin =
    flag(args, '--admin') ?? `${config.admin?.listen.host}:${config.admin?.listen.port}`;
  const adminPort = Number(admin.split(':').pop());
  assert.equal(main.readinessProbe.httpGet.path, '/readyz');
  assert.equal(main.livenessProbe.httpGet.path, '/healthz');
  for (const probe of [main.readinessProbe, main.livenessProbe]) {
    assert.equal(probe.httpGet.port, adminPort, 'probes hit the admin port');
    // The admin server beyond loopback needs the token; the probe must carry the Secret's.
    const header = probe.httpGet.httpHeaders.find((h: Doc) => h.name === 'Authorization');
    assert.equal(header.value, `Bearer ${secret.stringData.token}`);
  }
  const tokenEnv = main.env.find((e: Doc) => e.name === 'SWITCHYARD_ADMIN_TOKEN');
  assert.equal(tokenEnv.valueFrom.secretKeyRef.name, secret.metadata.name);
  assert.ok(main.ports.some((p: Doc) => p.containerPort === adminPort));
  // Every frontend's port is a container port, and the Service targets one of them.
  const containerPorts = new Map(main.ports.map((p: Doc) => [p.name, p.containerPort]));
  for (const f of config.frontends) {
    assert.ok([...containerPorts.values()].includes(f.listen.port), `frontend ${f.name}'s port`);
  }
  const service = byKind('Service');
  for (const p of service.spec.ports) assert.ok(containerPorts.has(p.targetPort), p.targetPort);
});

test('the grace period outlasts preStop and --drain-timeout', () => {
  const spec = byKind('Deployment').spec.template.spec;
  const main = spec.containers.find((c: Doc) => c.name === 'switchyard');
  const drainMs = parseDuration(flag(main.args, '--drain-timeout') ?? '30s', '--drain-timeout');
  const preStop = main.lifecycle?.preStop?.exec?.command;
  const preStopMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
  assert.ok(
    spec.terminationGracePeriodSeconds * 1000 > drainMs + preStopMs,
    `${spec.terminationGracePeriodSeconds} s > ${drainMs} ms + ${preStopMs} ms`,
  );
});

test('selectors: the Service and the PodDisruptionBudget select the Deployment pods; the reload sidecar can signal', () => {
  const deployment = byKind('Deployment');
  const labels = deployment.spec.template.metadata.labels;
  const matches = (selector: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(matches(deployment.spec.selector.matchLabels));
  assert.ok(matches(byKind('Service').spec.selector));
  const pdb = byKind('PodDisruptionBudget');
  assert.ok(matches(pdb.spec.selector.matchLabels));
  assert.ok(pdb.spec.minAvailable < deployment.spec.replicas, 'a drain can proceed');
  const spec = deployment.spec.template.spec;
  assert.equal(spec.shareProcessNamespace, true);
  const reload = spec.containers.find((c: Doc) => c.name === 'reload');
  const pattern = /pgrep -o -f ([^\s)]+)/.exec(reload.command.join(' '))?.[1];
  assert.ok(pattern && readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8').includes(pattern));
});

test("the container's arguments and the ConfigMap's config pass switchyard --check", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-k8s-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configMap = byKind('ConfigMap');
  const main = byKind('Deployment').spec.template.spec.containers.find(
    (c: Doc) => c.name === 'switchyard',
  );
  const key = Object.keys(configMap.data)[0] as string;
  const file = join(dir, key);
  writeFileSync(file, configMap.data[key]);
  const args = [...main.args];
  args[args.indexOf('--config') + 1] = file;
  const token = byKind('Secret').stringData.token;
  const ok = cli([...args, '--check'], { SWITCHYARD_ADMIN_TOKEN: token });
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /config ok: 1 frontend, 1 backend/);
  // Without the Secret's token, --admin 0.0.0.0 is refused: the env var is load-bearing.
  const { SWITCHYARD_ADMIN_TOKEN: _, ...env } = process.env;
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'switchyard.js'), ...args, '--check'], {
    encoding: 'utf8',
    env,
  });
  assert.equal(r.status, 2, r.stderr);
});

test('Dockerfile: multi-stage, the pinned node, non-root USER, HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM, the config at /etc/switchyard/switchyard.yaml', () => {
  const text = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]/.test(l));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  assert.ok(froms.length >= 2, 'multi-stage');
  const pinned = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies.node;
  assert.match(froms.at(-1) as string, new RegExp(`^FROM node:${pinned.replace(/\./g, '\\.')}-`));
  const user = lines.filter((l) => l.startsWith('USER ')).at(-1) as string;
  assert.match(user, /^USER [1-9]\d*(:\d+)?$/, 'a numeric non-root user');
  assert.ok(lines.includes('STOPSIGNAL SIGTERM'));
  const healthcheck = lines.find((l) => l.startsWith('HEALTHCHECK ')) as string;
  const image = parseYaml(readFileSync(join(ROOT, 'deploy', 'switchyard.yaml'), 'utf8'));
  const adminPort = String(image.admin.listen).split(':').pop();
  assert.ok(healthcheck.includes(`127.0.0.1:${adminPort}/healthz`), healthcheck);
  assert.ok(lines.includes('COPY deploy/switchyard.yaml /etc/switchyard/switchyard.yaml'));
  const cmd = JSON.parse((lines.find((l) => l.startsWith('CMD ')) as string).slice(4));
  assert.equal(flag(cmd, '--config'), '/etc/switchyard/switchyard.yaml');
  // The image's own config and CMD pass --check.
  const args = [...cmd];
  args[args.indexOf('--config') + 1] = join(ROOT, 'deploy', 'switchyard.yaml');
  const r = cli([...args, '--check']);
  assert.equal(r.status, 0, r.out);
  // The Deployment runs this image's entrypoint with the same kind of arguments.
  const deployment = byKind('Deployment');
  const main = deployment.spec.template.spec.containers.find((c: Doc) => c.name === 'switchyard');
  assert.equal(main.command, undefined, "the image's ENTRYPOINT runs");
});
