/**
 * Draws the rate sweeps of several bench runs into one chart: each run's project and floor
 * become lines (a run made with --committing-floor gives the committing floor's). The project
 * line of the first run is kept; later runs add only their floor.
 *
 *   tsx bench/sweepChart.ts bench/results/bare.json bench/results/committing.json --out docs/sweep.svg
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { sweepChart, type SweepSeries } from './lib/sweepChart';

interface SavedRun {
  options: { committingFloor: boolean; nodes: number; sessions: number; users: number };
  sweep: { steps: Array<{ system: 'project' | 'floor'; rate: number; deliveredPerS: number; p99: number; lost: number }> } | null;
}

const { values, positionals } = parseArgs({ options: { out: { type: 'string', default: 'bench/results/sweep.svg' } }, allowPositionals: true });
if (positionals.length === 0) throw new Error('usage: tsx bench/sweepChart.ts RESULT.json [RESULT.json ...] [--out FILE.svg]');
const runs = positionals.map((file) => JSON.parse(fs.readFileSync(file, 'utf8')) as SavedRun);
const series: SweepSeries[] = [];
runs.forEach((run, i) => {
  if (!run.sweep) throw new Error(`${positionals[i]} has no sweep (run the bench with the sweep scenario)`);
  const of = (system: 'project' | 'floor') => run.sweep!.steps.filter((s) => s.system === system);
  if (i === 0) series.push({ name: 'Séance', points: of('project') });
  series.push({ name: run.options.committingFloor ? 'committing floor' : 'bare floor', points: of('floor') });
});
const { nodes, sessions, users } = runs[0].options;
fs.writeFileSync(values.out, sweepChart(series, { title: `Rate sweep: ${nodes} nodes, ${sessions} sessions x ${users} users, routed by session`, limitMs: 50 }));
process.stdout.write(`written to ${values.out}\n`);
