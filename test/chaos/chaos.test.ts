/**
 * A 60-second chaos run (the same as `npm run chaos -- --minutes 1 --hostile`): every fault kind at
 * least once, and every count of loss, duplicate, hole, repeat, wrong presence and
 * unexplained death is 0, with hostile clients refused by every rule from 24 s on. On failure the table and the kept logs' directory are printed.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { expect } from 'chai';
import { runChaos } from '../../chaos/chaos';
import { FAULT_KINDS } from '../../chaos/faults';

describe('chaos (60 s)', function () {
  // Start-up, 60 s of faults, the last fault's recovery, settling and shutdown, on a loaded machine.
  this.timeout(360_000);

  it('loses, duplicates, skips and repeats nothing under random faults and hostile clients, and presence ends true', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-chaos-test-'));
    const lines: string[] = [];
    const { report, hostile, table, seed } = await runChaos({ durationMs: 60_000, dir, hostile: true, log: (l) => lines.push(l) });
    const explain = `seed ${seed}, logs in ${dir}\n${lines.join('\n')}\n\n${table}`;
    for (const kind of FAULT_KINDS)
      expect(
        report.faults.some((f) => f.kind === kind),
        `${kind} ran\n${explain}`,
      ).to.equal(true);
    expect(report.clients).to.be.at.least(60);
    expect(report.sessions).to.be.at.least(10);
    expect(report.messages.acknowledged, explain).to.be.above(100);
    expect(report.failures, explain).to.deep.equal([]);
    // The hostile clients ran and were refused (hostileFailures, in report.failures, judges each rule).
    expect(hostile, explain).to.not.equal(null);
    expect(hostile!.rules.find((r) => r.rule === 'impersonation')!.tried, explain).to.be.above(0);
    expect(Object.keys(hostile!.peakRssMb), explain).to.have.length(3);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
