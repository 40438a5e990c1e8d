/**
 * `npm run chaos -- --minutes N [--seed S] [--dir DIR]`: faults at random for N minutes
 * against a real 3-node cluster with clients on both transports, then a table of what was
 * acknowledged, stored, lost, duplicated, received with holes or repeats, who presence
 * lists and which processes died by themselves. Exits 1 unless every such count is 0.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runChaos } from './chaos';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      seed: { type: 'string' },
      sessions: { type: 'string', default: '10' },
      'clients-per-session': { type: 'string', default: '6' },
      dir: { type: 'string' },
      hostile: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run chaos -- [--minutes N] [--seed S] [--sessions 10] [--clients-per-session 6] [--dir DIR] [--hostile]\n');
    return 0;
  }
  const minutes = Number(values.minutes);
  if (!(minutes > 0 && minutes <= 120)) throw new Error(`--minutes must be a number in (0, 120], got ${values.minutes}`);
  const int = (name: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${v}`);
    return n;
  };
  const sessions = int('sessions', values.sessions, 1, 50);
  const clientsPerSession = int('clients-per-session', values['clients-per-session'], 1, 12);
  const seed = values.seed === undefined ? undefined : int('seed', values.seed, 0, 2 ** 31 - 1);
  const dir = values.dir ?? path.join(os.tmpdir(), `seance-chaos-${new Date().toISOString().replace(/[:.]/g, '-')}`);

  const result = await runChaos({
    durationMs: Math.round(minutes * 60_000),
    sessions,
    clientsPerSession,
    seed,
    dir,
    hostile: values.hostile,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${result.table}\n\nseed ${result.seed}; logs, per-client table and report.json in ${result.dir}\n`);
  return result.report.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
