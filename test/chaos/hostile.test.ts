/** The hostile run's judgement, on made-up reports (the run itself is in chaos.test.ts). */
import { expect } from 'chai';
import { deliveryLatency, hostileFailures, percentiles, type HostileReport } from '../../chaos/hostile';

const report = (over: Partial<HostileReport> = {}): HostileReport => ({
  startedAtMs: 24_000,
  rules: [
    { rule: 'impersonation', tried: 10, refused: 9, wrongly: 0, how: 'USER_ID_TAKEN' },
    { rule: 'never-read', tried: 5, refused: 0, wrongly: 0, how: '' },
    { rule: 'typing-flood', tried: 3, refused: 3, wrongly: 0, how: 'RATE_LIMITED' },
    { rule: 'message-flood', tried: 300, refused: 200, wrongly: 0, how: 'RATE_LIMITED' },
    { rule: 'connection-flood', tried: 60, refused: 30, wrongly: 0, how: 'RATE_LIMITED' },
    { rule: 'spoofed-address', tried: 60, refused: 40, wrongly: 0, how: '429' },
  ],
  peakRssMb: { 'node-1': 180, 'node-2': 170, 'node-3': 175 },
  delivery: { calm: percentiles([1, 2, 3]), hostile: percentiles([2, 3, 4]) },
  ...over,
});

describe('chaos: the hostile judgement', () => {
  it('passes when every timing-independent rule refused something and memory stayed under the limit', () => {
    expect(hostileFailures(report())).to.deep.equal([]);
  });

  it('fails a rule that let everything through, and a node past 400 MB; never-read is only counted', () => {
    const r = report();
    r.rules[2] = { ...r.rules[2], refused: 0 };
    r.rules[5] = { ...r.rules[5], refused: 0 };
    r.peakRssMb['node-2'] = 401;
    expect(hostileFailures(r)).to.deep.equal(['hostile typing-flood: 3 tried, none refused', 'hostile spoofed-address: 60 tried, none refused', 'node-2 peaked at 401 MB resident (limit 400)']);
  });

  it('times each live arrival at another sitter from its sending, split at the hostile start', () => {
    const a = [
      { t: 100, type: 'sent', token: 'c0-1' },
      { t: 30_000, type: 'sent', token: 'c0-2' },
      { t: 105, type: 'message', m: { token: 'c0-1' } },
    ];
    const b = [
      { t: 110, type: 'message', m: { token: 'c0-1' } },
      { t: 30_040, type: 'message', m: { token: 'c0-2' } },
      { t: 30_050, type: 'message', m: { token: null } },
    ];
    const d = deliveryLatency([a, b], 24_000);
    // The sender's own echo is not a delivery to someone else.
    expect(d.calm).to.deep.equal({ n: 1, p50: 10, p99: 10 });
    expect(d.hostile).to.deep.equal({ n: 1, p50: 40, p99: 40 });
  });

  it('takes percentiles by rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentiles(values)).to.deep.equal({ n: 100, p50: 50, p99: 99 });
    expect(percentiles([])).to.deep.equal({ n: 0, p50: null, p99: null });
  });
});
