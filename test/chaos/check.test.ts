/**
 * The chaos checker on logs written by hand: each anomaly it exists to find (a loss, a
 * duplicate, a hole, a repeat, a reordering, a ghost, a death) is counted, and a clean run
 * counts nothing. Without these, a checker that always says 0 would pass the chaos run.
 */
import { expect } from 'chai';
import { check, type CheckInput, type ClientOutcome } from '../../chaos/check';
import type { ClientLogEntry, SeenMessage } from '../../chaos/clients';
import type { StoredMessage } from '../../chaos/history';

const S = 'session-1';

function stored(count: number): StoredMessage[] {
  // Odd seqs are c0's questions, even ones the spirit's answers.
  return Array.from({ length: count }, (_, i) => ({
    id: 100 + i,
    seq: i + 1,
    user_id: i % 2 === 0 ? 'chaos-0' : null,
    is_spirit: i % 2 === 1,
    message: i % 2 === 0 ? `is anyone there? [c0-${i / 2 + 1}]` : 'YES',
    timestamp: new Date(i * 10).toISOString(),
  }));
}

const seen = (m: StoredMessage): SeenMessage => ({ id: m.id, seq: m.seq, spirit: m.is_spirit, token: m.is_spirit ? null : /\[(c\d+-\d+)\]/.exec(m.message)![1] });

function client(index: number, log: ClientLogEntry[], connectedAtEnd = true): ClientOutcome {
  return {
    spec: { index, transport: 'sio', sessionId: S, userId: `chaos-${index}`, name: `C${index}`, url: 'http://127.0.0.1:1', localAddress: '127.0.0.1' },
    log,
    connectedAtEnd,
  };
}

/** c0 sends and is acknowledged for every question; c1 receives `seqs` live after joining an empty session. */
function input(history: StoredMessage[], seqs: number[], extra: Partial<CheckInput> = {}): CheckInput {
  const questions = history.filter((m) => !m.is_spirit);
  const c0: ClientLogEntry[] = [{ t: 0, type: 'joined', resumed: false, last_seq: null, messages: [] }];
  for (const q of questions) {
    const token = seen(q).token!;
    c0.push({ t: 1, type: 'sent', token }, { t: 2, type: 'ack', token, ok: true, id: q.id, seq: q.seq! });
  }
  for (const m of history) c0.push({ t: 3, type: 'message', m: seen(m) });
  const bySeq = new Map(history.map((m) => [m.seq, m]));
  const c1: ClientLogEntry[] = [{ t: 0, type: 'joined', resumed: false, last_seq: null, messages: [] }];
  for (const s of seqs) c1.push({ t: 4, type: 'message', m: seen(bySeq.get(s)!) });
  return {
    durationMs: 1000,
    clients: [client(0, c0), client(1, c1)],
    history: new Map([[S, history]]),
    pagedBy: 'after_seq',
    presence: [{ sessionId: S, connected: ['chaos-0', 'chaos-1'], byNode: { 'node-1': ['chaos-0', 'chaos-1'] } }],
    exits: [],
    faults: [],
    startedAt: 0,
    answerDelayMs: 0,
    ...extra,
  };
}

describe('chaos checker', () => {
  it('passes a clean run', () => {
    const report = check(input(stored(6), [1, 2, 3, 4, 5, 6]));
    expect(report.failures).to.deep.equal([]);
    expect(report.messages).to.include({ sent: 3, acknowledged: 3, storedFromClients: 3, storedAll: 6, lost: 0, duplicated: 0 });
  });

  it('counts an acknowledged message missing from history as lost', () => {
    const history = stored(6);
    const report = check({ ...input(history, [1, 2, 3, 4, 5, 6]), history: new Map([[S, history.filter((m) => m.seq !== 3)]]) });
    expect(report.messages.lost).to.equal(1);
    expect(report.messages.historyGaps).to.equal(1);
  });

  it('fails a run that leaves a question without an answer (or answers one twice)', () => {
    const history = stored(6);
    const unanswered = history.filter((m) => m.seq !== 6);
    const report = check({ ...input(unanswered, [1, 2, 3, 4, 5]), history: new Map([[S, unanswered]]) });
    expect(report.spirit).to.include({ questions: 3, answers: 2, unanswered: 1 });
    expect(report.failures).to.include('1 questions without an answer');
    const twice = [...history, { ...history[5], id: 999, seq: 7 }];
    expect(check({ ...input(history, [1, 2, 3, 4, 5, 6]), history: new Map([[S, twice]]) }).failures).to.include('1 more answers than questions');
  });

  it('counts a message stored twice as duplicated', () => {
    const history = stored(4);
    const twice = [...history, { ...history[0], id: 999, seq: 5 }];
    const report = check({ ...input(history, [1, 2, 3, 4]), history: new Map([[S, twice]]) });
    expect(report.messages.duplicated).to.equal(1);
  });

  it('counts holes, repeats and reorderings in what a client received, and a client that fell behind', () => {
    expect(check(input(stored(6), [1, 2, 4, 5, 6])).totals.holes).to.equal(1);
    expect(check(input(stored(6), [1, 2, 3, 4])).totals.holes, 'the last two never arrived').to.equal(2);
    expect(check(input(stored(6), [1, 2, 3, 3, 4, 5, 6])).totals.repeats).to.equal(1);
    const reordered = check(input(stored(6), [1, 2, 4, 3, 5, 6]));
    expect(reordered.totals).to.include({ outOfOrder: 1, holes: 0, repeats: 0 });
    expect(reordered.failures).to.have.length(1);
  });

  it('follows a client across a resume: what it got before and after must join up', () => {
    const history = stored(8);
    const m = (s: number) => seen(history[s - 1]);
    const base = input(history, []);
    const log: ClientLogEntry[] = [
      { t: 0, type: 'joined', resumed: false, last_seq: null, messages: [m(1), m(2)] },
      { t: 1, type: 'message', m: m(3) },
      { t: 2, type: 'disconnected', reason: 'transport close' },
      { t: 3, type: 'joined', resumed: true, last_seq: 3, messages: [m(4), m(5)] },
      { t: 4, type: 'message', m: m(6) },
      { t: 4, type: 'message', m: m(7) },
      { t: 4, type: 'message', m: m(8) },
    ];
    const clean = check({ ...base, clients: [base.clients[0], client(1, log)] });
    expect(clean.failures).to.deep.equal([]);
    expect(clean.totals).to.include({ resumed: 1, notResumed: 0 });
    // The resume returned 5 only: 4 was missed.
    const lossy = log.map((e) => (e.type === 'joined' && e.resumed ? { ...e, messages: [m(5)] } : e));
    expect(check({ ...base, clients: [base.clients[0], client(1, lossy)] }).totals.holes).to.equal(1);
    // The resume started again at 3: a repeat.
    const again = log.map((e) => (e.type === 'joined' && e.resumed ? { ...e, messages: [m(3), m(4), m(5)] } : e));
    expect(check({ ...base, clients: [base.clients[0], client(1, again)] }).totals.repeats).to.equal(1);
  });

  it('counts presence ghosts and absentees, and processes that died by themselves', () => {
    const report = check(
      input(stored(2), [1, 2], {
        presence: [{ sessionId: S, connected: ['chaos-0', 'chaos-1'], byNode: { 'node-1': ['chaos-0', 'chaos-9'], 'node-2': null } }],
        exits: [
          { process: 'node-2', pid: 10, at: 5, code: null, expected: true },
          { process: 'node-3', pid: 11, at: 6, code: 1, expected: false },
        ],
      }),
    );
    expect(report.presence).to.include({ ghosts: 1, missing: 1, unanswered: 1 });
    expect(report.processes.unexplained).to.equal(1);
    expect(report.failures.join('\n')).to.match(/node-3 \(pid 11\) died by itself/);
  });
});
