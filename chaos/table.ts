/** A chaos report as Markdown tables (they read well in a terminal and paste into docs/chaos.md). */
import type { ChaosReport, ClientRow } from './check';
import { FAULT_KINDS } from './faults';

export function table(head: string[], rows: Array<Array<string | number>>, alignRight: boolean[] = head.map((_, i) => i > 0)): string {
  const cells = rows.map((r) => r.map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (alignRight[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (alignRight[i] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(head), rule, ...cells.map(line)].join('\n');
}

const ok = (n: number) => (n === 0 ? `${n}` : `**${n}**`);

export function formatReport(r: ChaosReport, opts: { allClients?: boolean } = {}): string {
  const out: string[] = [];
  const transports = Object.entries(r.transports)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  out.push(`Chaos: ${(r.durationMs / 1000).toFixed(0)} s of faults, ${r.clients} clients (${transports}) in ${r.sessions} sessions; history read by ${r.pagedBy}`);
  out.push('');

  const faultRows = FAULT_KINDS.map((kind) => {
    const fs = r.faults.filter((f) => f.kind === kind);
    // From the fault to every node answering /health 200 again.
    const outages = fs.filter((f) => f.recoveredMs !== null).map((f) => f.durationMs + f.recoveredMs!);
    const exits = fs.map((f) => f.exitMs).filter((ms): ms is number => ms !== undefined);
    return [kind, fs.length, [...new Set(fs.map((f) => f.target))].sort().join(' ') || '-', outages.length ? `${Math.max(...outages)}` : '-', exits.length ? `${Math.max(...exits)}` : '-'];
  });
  out.push(table(['fault', 'times', 'targets', 'longest until all healthy, ms', 'slowest exit after SIGTERM, ms'], faultRows));
  out.push('');

  const m = r.messages;
  out.push(
    table(
      ['messages', 'count'],
      [
        ['sent by clients', m.sent],
        ['acknowledged (Socket.IO ack, raw: own echo)', m.acknowledged],
        ['refused (error ack: database down, rate limit)', m.refused],
        ['unconfirmed (no answer: node died or froze)', m.unconfirmed],
        ['stored, from clients', m.storedFromClients],
        ['stored, of those never acknowledged', m.storedUnacknowledged],
        ["stored, all (with the spirit's)", m.storedAll],
        ['lost (acknowledged, not stored)', ok(m.lost)],
        ['duplicated (stored twice)', ok(m.duplicated)],
        ['history seq gaps / repeats / without seq', `${ok(m.historyGaps)} / ${ok(m.historyRepeats)} / ${ok(m.historyWithoutSeq)}`],
        ['ack id or seq not as stored', ok(m.ackMismatch)],
      ],
    ),
  );
  out.push('');

  const t = r.totals;
  const byTransport = Object.keys(r.transports).map((tr) => {
    const rows = r.perClient.filter((c) => c.transport === tr);
    const sum = (k: keyof ClientRow) => rows.reduce((s, c) => s + (c[k] as number), 0);
    return [
      tr,
      rows.length,
      sum('joins'),
      `${sum('resumed')} / ${sum('notResumed')}`,
      sum('seen'),
      ok(sum('holes')),
      ok(sum('repeats')),
      ok(sum('outOfOrder')),
      ok(sum('withoutSeq')),
      ok(sum('notStored')),
    ];
  });
  byTransport.push([
    'all',
    r.clients,
    t.joins,
    `${t.resumed} / ${t.notResumed}`,
    r.perClient.reduce((s, c) => s + c.seen, 0),
    ok(t.holes),
    ok(t.repeats),
    ok(t.outOfOrder),
    ok(t.withoutSeq),
    ok(t.notStored),
  ]);
  out.push(table(['clients', 'n', 'joins', 'resumed / not', 'seqs seen', 'holes', 'repeats', 'out of order', 'no seq', 'not in history'], byTransport));
  out.push(`clients not back in their session at the end: ${ok(t.notConnectedAtEnd)}`);
  out.push('');

  const shown = opts.allClients ? r.perClient : r.perClient.filter((c) => c.holes || c.repeats || c.outOfOrder || c.withoutSeq || c.notStored);
  if (shown.length) {
    out.push(
      table(
        ['client', 'transport', 'session', 'joins', 'resumed / not', 'sent', 'acked', 'seen', 'holes', 'repeats', 'out of order', 'no seq', 'not in history'],
        shown
          .slice(0, opts.allClients ? shown.length : 20)
          .map((c) => [
            `c${c.index}`,
            c.transport,
            c.sessionId.slice(0, 8),
            c.joins,
            `${c.resumed} / ${c.notResumed}`,
            c.sent,
            c.acked,
            c.seen,
            c.holes,
            c.repeats,
            c.outOfOrder,
            c.withoutSeq,
            c.notStored,
          ]),
        [false, false, false, true, true, true, true, true, true, true, true, true, true],
      ),
    );
    if (!opts.allClients && shown.length > 20) out.push(`(${shown.length - 20} more clients with anomalies)`);
    out.push('');
  }

  const byFault = Object.entries(r.spirit.byFault)
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  out.push(
    `spirit: ${r.spirit.questions} questions stored, ${r.spirit.answers} answers stored, questions without an answer: ${ok(r.spirit.unanswered)}${byFault ? ` (by when they were asked: ${byFault})` : ''}`,
  );
  out.push('');

  const p = r.presence;
  out.push(
    table(
      ['presence after the faults (every node asked)', 'count'],
      [
        ['listed but not connected (ghosts)', ok(p.ghosts)],
        ['connected but not listed', ok(p.missing)],
        ['lists not served', ok(p.unanswered)],
      ],
    ),
  );
  for (const d of p.details.slice(0, 10)) out.push(`  ${d}`);
  out.push('');

  const byProcess = new Map<string, { exits: number; byFault: number; unexplained: number }>();
  for (const e of r.processes.exits) {
    const row = byProcess.get(e.process) ?? { exits: 0, byFault: 0, unexplained: 0 };
    row.exits++;
    if (e.expected) row.byFault++;
    else row.unexplained++;
    byProcess.set(e.process, row);
  }
  out.push(
    table(
      ['process', 'exits', 'by a fault or the final stop', 'died by itself'],
      [...byProcess.entries()].sort().map(([name, row]) => [name, row.exits, row.byFault, ok(row.unexplained)]),
    ),
  );
  out.push(`SIGTERMed nodes that did not exit 0 within 12 s: ${ok(r.processes.uncleanSigterm)}; faults the cluster did not recover from: ${ok(r.processes.unrecovered)}`);
  out.push('');
  out.push(
    r.failures.length === 0
      ? 'PASS: no loss, no duplicate, no hole, no repeat, every question answered, presence true, no unexplained death'
      : `FAIL:\n${r.failures.map((f) => `  - ${f}`).join('\n')}`,
  );
  return out.join('\n');
}
