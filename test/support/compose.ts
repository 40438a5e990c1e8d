/**
 * docker-compose.yml read the way `docker compose` reads it, for tests that run its services
 * with plain `docker run` (compose v2 is not installable here, and Debian's 1.29 rejects the
 * file): `${VAR:-default}` and `${VAR:?message}` interpolated, `<<:` merges resolved, and a
 * service's environment, healthcheck and stop grace period turned into `docker run` flags.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../harness/processes';

export interface ComposeService {
  image?: string;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test: string | string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  stop_grace_period?: string;
  volumes?: Array<string | { type: string; source: string; target: string; read_only?: boolean }>;
  ports?: Array<string | number>;
}

export function readCompose(file = 'docker-compose.yml'): Record<string, ComposeService> {
  const compose = parse(fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  return compose.services;
}

/** Compose's variable syntax, against `vars` (the shell environment compose would see). */
export function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::?([-?])([^}]*))?\}/g, (_all, name: string, kind: string | undefined, arg: string | undefined) => {
    const value = vars[name];
    if (value !== undefined && value !== '') return value;
    if (kind === '?') throw new Error(`docker-compose.yml needs ${name}: ${arg}`);
    return kind === '-' ? (arg ?? '') : '';
  });
}

/** The single-quoted shell word for `word`. */
function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `--env NAME=value` for each of the service's variables. */
export function environmentFlags(service: ComposeService, vars: Record<string, string>): string[] {
  return Object.entries(service.environment ?? {}).flatMap(([name, value]) => ['--env', `${name}=${interpolate(String(value ?? ''), vars)}`]);
}

/** The service's healthcheck as `docker run --health-*` flags (which always run it with a shell). */
export function healthFlags(service: ComposeService): string[] {
  const check = service.healthcheck;
  if (!check) return [];
  const test = check.test;
  let command: string;
  if (typeof test === 'string') command = test;
  else if (test[0] === 'CMD-SHELL') command = test[1];
  else if (test[0] === 'CMD') command = test.slice(1).map(shellWord).join(' ');
  else throw new Error(`healthcheck test not understood: ${JSON.stringify(test)}`);
  const flags = ['--health-cmd', command];
  if (check.interval) flags.push('--health-interval', check.interval);
  if (check.timeout) flags.push('--health-timeout', check.timeout);
  if (check.retries !== undefined) flags.push('--health-retries', String(check.retries));
  if (check.start_period) flags.push('--health-start-period', check.start_period);
  return flags;
}

/** Seconds in a compose duration such as "15s", "1m30s" or "500ms". */
export function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  return total;
}

/** `--stop-timeout`, from stop_grace_period (compose's default is 10 s, as Docker's). */
export function stopFlags(service: ComposeService): string[] {
  return ['--stop-timeout', String(Math.ceil(seconds(service.stop_grace_period ?? '10s')))];
}

/** The service's command as `docker run` arguments after the image. */
export function commandArgs(service: ComposeService): string[] {
  const command = service.command;
  if (command === undefined) return [];
  if (Array.isArray(command)) return command;
  throw new Error('a string command would need compose’s shell-like splitting; the file uses lists');
}

/** Bind mounts (`./file:/target[:ro]`) as `--volume` flags with the host path made absolute. */
export function bindMountFlags(service: ComposeService): string[] {
  return (service.volumes ?? [])
    .filter((v): v is string => typeof v === 'string' && v.startsWith('./'))
    .flatMap((v) => {
      const [source, ...rest] = v.split(':');
      return ['--volume', [path.join(PROJECT_ROOT, source), ...rest].join(':')];
    });
}
