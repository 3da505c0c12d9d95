/**
 * From YAML text or a plain object to a validated Config. Every problem is collected, never just
 * the first: a ConfigError carries one `path.to.key: reason` line per problem.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { defaults } from '../defaults.ts';
import { ConfigError } from '../errors.ts';
import { crossCheck } from './cross-check.ts';
import { type Config, type ConfigInput, configSchema, echo } from './schema.ts';

/** Validates a config object (the library API's input). Throws ConfigError listing every problem. */
export function parseConfig(input: ConfigInput | unknown): Config {
  const result = configSchema.safeParse(input);
  const cross = crossCheck(input);
  // A key the cross-checks explain (a misplaced `from`) is not also listed as "unknown key".
  const explained = new Set(cross.map((p) => p.slice(0, p.indexOf(':'))));
  const problems = (result.success ? [] : result.error.issues.flatMap(describeIssue)).filter(
    (p) => !(p.endsWith(': unknown key') && explained.has(p.slice(0, p.indexOf(':')))),
  );
  problems.push(...cross);
  if (problems.length > 0) throw configError(problems);
  return result.data as Config;
}

/** Parses and validates YAML text. `source` names the text in syntax errors. */
export function parseConfigYaml(text: string, source = 'config'): Config {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw configError(
      doc.errors.map(
        (e) => `${source}: ${echoLine((e.message.split('\n')[0] ?? '').replace(/:$/, ''))}`,
      ),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: defaults.configMaxAliasCount });
  } catch (err) {
    // The yaml library throws a ReferenceError past maxAliasCount ("billion laughs").
    if (!(err instanceof ReferenceError)) throw err;
    throw configError([
      `${source}: more than ${defaults.configMaxAliasCount} YAML alias expansions (${echoLine(err.message)})`,
    ]);
  }
  return parseConfig(value ?? {});
}

/** Reads and validates a YAML config file (at most defaults.configMaxBytes of it). */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readBounded(path, defaults.configMaxBytes);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError([`${path}: cannot read the file (${code})`]);
  }
  return parseConfigYaml(text, path);
}

/**
 * The file's text, read in chunks up to `max` bytes: readFileSync would read /dev/zero or a
 * multi-gigabyte log until memory runs out.
 */
function readBounded(path: string, max: number): string {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > max) {
        throw new ConfigError([`${path}: larger than ${max} bytes; not a switchyard config`]);
      }
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * A ConfigError listing at most defaults.configMaxProblems problems, then `and N more problems`:
 * a file that is no config at all gives one problem per line of it. `total` counts them all.
 */
function configError(problems: string[]): ConfigError & { total: number } {
  const max = defaults.configMaxProblems;
  const listed =
    problems.length > max + 1
      ? [...problems.slice(0, max), `and ${problems.length - max} more problems`]
      : problems;
  return Object.assign(new ConfigError(listed), { total: problems.length });
}

/** A key as it may be echoed: a name (letters, digits, `_.-`), truncated; anything else hidden. */
function echoKey(key: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(key) ? echo(key) : '(a key that is not a name, not shown)';
}

/**
 * A message from a library, which may quote the input: control characters out, and long enough
 * for `at line 3, column 7` but not for a whole line of a secret file.
 */
function echoLine(text: string): string {
  return echo(text, 120);
}

/** One zod issue as `path.to.key: reason` lines (an unknown-keys issue gives one per key). */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${[...path, echoKey(key)].join('.')}: unknown key`);
  }
  const where = path.length > 0 ? path.join('.') : '(top level)';
  let reason = issue.message;
  if (issue.code === 'invalid_type' && /received undefined$/.test(reason)) reason = 'required';
  else reason = reason.replace(/^Invalid input: /, '');
  return [`${where}: ${reason}`];
}
