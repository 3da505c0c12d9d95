/**
 * From YAML text or a plain object to a validated Config. Every problem is collected, never just
 * the first: a ConfigError carries one `path.to.key: reason` line per problem.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { crossCheck } from './cross-check.ts';
import { type Config, type ConfigInput, configSchema } from './schema.ts';

/** Validates a config object (the library API's input). Throws ConfigError listing every problem. */
export function parseConfig(input: ConfigInput | unknown): Config {
  const result = configSchema.safeParse(input);
  const problems = result.success ? [] : result.error.issues.flatMap(describeIssue);
  problems.push(...crossCheck(input));
  if (problems.length > 0) throw new ConfigError(problems);
  return result.data as Config;
}

/** Parses and validates YAML text. `source` names the text in syntax errors. */
export function parseConfigYaml(text: string, source = 'config'): Config {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${source}: ${(e.message.split('\n')[0] ?? '').replace(/:$/, '')}`),
    );
  }
  return parseConfig(doc.toJS() ?? {});
}

/** Reads and validates a YAML config file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError([`${path}: cannot read the file (${code})`]);
  }
  return parseConfigYaml(text, path);
}

/** One zod issue as `path.to.key: reason` lines (an unknown-keys issue gives one per key). */
function describeIssue(issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${[...path, key].join('.')}: unknown key`);
  }
  const where = path.length > 0 ? path.join('.') : '(top level)';
  let reason = issue.message;
  if (issue.code === 'invalid_type' && /received undefined$/.test(reason)) reason = 'required';
  else reason = reason.replace(/^Invalid input: /, '');
  return [`${where}: ${reason}`];
}
