/**
 * The checker: judges a chaos run from what the database kept (history) and what each
 * client logged, and nothing else. Pure functions, so a run's logs can be checked again.
 */
import type { ClientLogEntry, ClientSpec, SeenMessage } from './clients';
import type { FaultRecord, ProcessExit } from './faults';
import type { StoredMessage } from './history';
import { tokenOf } from './clients';

export interface ClientOutcome {
  spec: ClientSpec;
  log: ClientLogEntry[];
  /** Joined on a live connection when the run ended. */
  connectedAtEnd: boolean;
}

export interface PresenceView {
  sessionId: string;
  /** Who is really connected at the end. */
  connected: string[];
  /** What each node's GET /participants said (null: the node did not answer). */
  byNode: Record<string, string[] | null>;
}

export interface ClientRow {
  index: number;
  transport: string;
  sessionId: string;
  /** Connections that reached session_joined. */
  joins: number;
  /** Reconnects that carried last_seq and got resumed: true / resumed: false. */
  resumed: number;
  notResumed: number;
  /** Distinct seqs received. */
  seen: number;
  /** Seqs in the client's span (its first seq to the session's last) never received. */
  holes: number;
  /** Seqs received more than once. */
  repeats: number;
  /** Seqs received after a higher one on the same connection. */
  outOfOrder: number;
  /** Stored messages received without a seq. */
  withoutSeq: number;
  /** Received messages whose seq and id do not match history. */
  notStored: number;
  sent: number;
  acked: number;
}

export interface ChaosReport {
  durationMs: number;
  clients: number;
  sessions: number;
  transports: Record<string, number>;
  faults: FaultRecord[];
  messages: {
    sent: number;
    acknowledged: number;
    refused: number;
    unconfirmed: number;
    storedFromClients: number;
    storedUnacknowledged: number;
    storedAll: number;
    lost: number;
    duplicated: number;
    historyGaps: number;
    historyRepeats: number;
    historyWithoutSeq: number;
    ackMismatch: number;
  };
  perClient: ClientRow[];
  totals: { holes: number; repeats: number; outOfOrder: number; withoutSeq: number; notStored: number; notConnectedAtEnd: number; resumed: number; notResumed: number; joins: number };
  presence: { ghosts: number; missing: number; unanswered: number; details: string[] };
  /**
   * Questions stored without a stored answer (a failure: the cluster answers what a node that
   * went owed), split by the fault whose time they fall in (from the answer delay before it to
   * its recovery) to say where to look.
   */
  spirit: { questions: number; answers: number; unanswered: number; byFault: Record<string, number> };
  processes: { exits: ProcessExit[]; unexplained: number; uncleanSigterm: number; unrecovered: number };
  pagedBy: string;
  /** Every non-zero count that fails the run, as readable lines; empty means a pass. */
  failures: string[];
}

export interface CheckInput {
  durationMs: number;
  clients: ClientOutcome[];
  history: Map<string, StoredMessage[]>;
  pagedBy: string;
  presence: PresenceView[];
  exits: ProcessExit[];
  faults: FaultRecord[];
  /** Wall-clock ms of the run's t = 0 (client logs and faults count from it). */
  startedAt: number;
  /** How long the spirit takes to answer (SPIRIT_ORACLE_DELAY_MS). */
  answerDelayMs: number;
}

function analyseClient(c: ClientOutcome, stored: StoredMessage[]): ClientRow {
  const bySeq = new Map<number, StoredMessage>();
  for (const m of stored) if (m.seq !== null) bySeq.set(m.seq, m);
  const sessionLast = stored.reduce((top, m) => Math.max(top, m.seq ?? 0), 0);
  const counts = new Map<number, number>();
  const row: ClientRow = {
    index: c.spec.index,
    transport: c.spec.transport,
    sessionId: c.spec.sessionId,
    joins: 0,
    resumed: 0,
    notResumed: 0,
    seen: 0,
    holes: 0,
    repeats: 0,
    outOfOrder: 0,
    withoutSeq: 0,
    notStored: 0,
    sent: 0,
    acked: 0,
  };
  let start: number | null = null;
  let prev: number | null = null;
  let top = 0;
  const see = (m: SeenMessage) => {
    if (m.seq === null) {
      row.withoutSeq++;
      return;
    }
    const known = bySeq.get(m.seq);
    if (!known || known.id !== m.id) row.notStored++;
    const before = counts.get(m.seq) ?? 0;
    counts.set(m.seq, before + 1);
    if (before > 0) row.repeats++;
    else if (prev !== null && m.seq < prev) row.outOfOrder++;
    prev = m.seq;
    top = Math.max(top, m.seq);
  };
  for (const e of c.log) {
    switch (e.type) {
      case 'joined': {
        row.joins++;
        if (e.last_seq !== null) {
          if (e.resumed === true) row.resumed++;
          else row.notResumed++;
        }
        // A resumed connection continues after last_seq; a fresh one starts its own order.
        prev = e.resumed === true && e.last_seq !== null ? e.last_seq : null;
        if (start === null) {
          const seqs = e.messages.map((m) => m.seq).filter((s): s is number => s !== null);
          // A first join into an empty session starts at seq 1.
          start = seqs.length > 0 ? Math.min(...seqs) : e.messages.length > 0 ? null : 1;
        }
        for (const m of e.messages) see(m);
        break;
      }
      case 'message':
        see(e.m);
        break;
      case 'sent':
        row.sent++;
        break;
      case 'ack':
        if (e.ok) row.acked++;
        break;
      default:
        break;
    }
  }
  row.seen = counts.size;
  if (start !== null) {
    // A client still in the session at the end should have everything up to the session's last seq.
    const end = c.connectedAtEnd ? Math.max(sessionLast, top) : top;
    for (let s = start; s <= end; s++) if (!counts.has(s)) row.holes++;
  }
  return row;
}

export function check(input: CheckInput): ChaosReport {
  const failures: string[] = [];
  const transports: Record<string, number> = {};
  for (const c of input.clients) transports[c.spec.transport] = (transports[c.spec.transport] ?? 0) + 1;

  // --- messages: what clients were told against what the database kept ---
  const msg = {
    sent: 0,
    acknowledged: 0,
    refused: 0,
    unconfirmed: 0,
    storedFromClients: 0,
    storedUnacknowledged: 0,
    storedAll: 0,
    lost: 0,
    duplicated: 0,
    historyGaps: 0,
    historyRepeats: 0,
    historyWithoutSeq: 0,
    ackMismatch: 0,
  };
  const storedByToken = new Map<string, StoredMessage[]>();
  for (const [, stored] of input.history) {
    msg.storedAll += stored.length;
    const seqs = new Map<number, number>();
    const ids = new Set<number>();
    for (const m of stored) {
      if (ids.has(m.id)) msg.duplicated++;
      ids.add(m.id);
      if (m.seq === null) msg.historyWithoutSeq++;
      else seqs.set(m.seq, (seqs.get(m.seq) ?? 0) + 1);
      const token = m.is_spirit ? null : tokenOf(m.message);
      if (token) storedByToken.set(token, [...(storedByToken.get(token) ?? []), m]);
    }
    for (const n of seqs.values()) msg.historyRepeats += n - 1;
    const last = Math.max(0, ...seqs.keys());
    for (let s = 1; s <= last; s++) if (!seqs.has(s)) msg.historyGaps++;
  }
  for (const rows of storedByToken.values()) {
    msg.storedFromClients++;
    msg.duplicated += rows.length - 1;
  }
  const lostTokens: string[] = [];
  for (const c of input.clients) {
    const acks = new Map<string, Extract<ClientLogEntry, { type: 'ack' }>>();
    for (const e of c.log) {
      if (e.type === 'sent') msg.sent++;
      if (e.type === 'ack') acks.set(e.token, e);
    }
    for (const e of c.log) {
      if (e.type !== 'sent') continue;
      const ack = acks.get(e.token);
      const stored = storedByToken.get(e.token);
      if (!ack) msg.unconfirmed++;
      else if (!ack.ok) msg.refused++;
      else {
        msg.acknowledged++;
        if (!stored) {
          msg.lost++;
          lostTokens.push(e.token);
        } else if (stored[0].id !== ack.id || (ack.seq !== undefined && stored[0].seq !== ack.seq)) msg.ackMismatch++;
      }
      if (stored && !(ack && ack.ok)) msg.storedUnacknowledged++;
    }
  }
  if (msg.lost) failures.push(`${msg.lost} acknowledged messages are not in history (${lostTokens.slice(0, 10).join(', ')})`);
  if (msg.duplicated) failures.push(`${msg.duplicated} messages stored more than once`);
  if (msg.historyGaps) failures.push(`${msg.historyGaps} seqs missing from history`);
  if (msg.historyRepeats) failures.push(`${msg.historyRepeats} seqs repeated in history`);
  if (msg.historyWithoutSeq) failures.push(`${msg.historyWithoutSeq} history messages without seq`);
  if (msg.ackMismatch) failures.push(`${msg.ackMismatch} acknowledgements whose id/seq differ from history`);

  // --- every client's view of its session ---
  const perClient = input.clients.map((c) => analyseClient(c, input.history.get(c.spec.sessionId) ?? []));
  const totals = { holes: 0, repeats: 0, outOfOrder: 0, withoutSeq: 0, notStored: 0, notConnectedAtEnd: 0, resumed: 0, notResumed: 0, joins: 0 };
  for (const [i, r] of perClient.entries()) {
    totals.holes += r.holes;
    totals.repeats += r.repeats;
    totals.outOfOrder += r.outOfOrder;
    totals.withoutSeq += r.withoutSeq;
    totals.notStored += r.notStored;
    totals.resumed += r.resumed;
    totals.notResumed += r.notResumed;
    totals.joins += r.joins;
    if (!input.clients[i].connectedAtEnd) totals.notConnectedAtEnd++;
  }
  const worst = (key: keyof ClientRow) =>
    perClient
      .filter((r) => (r[key] as number) > 0)
      .slice(0, 5)
      .map((r) => `c${r.index}:${r[key]}`)
      .join(' ');
  if (totals.holes) failures.push(`${totals.holes} holes in what clients received (${worst('holes')})`);
  if (totals.repeats) failures.push(`${totals.repeats} repeats in what clients received (${worst('repeats')})`);
  if (totals.outOfOrder) failures.push(`${totals.outOfOrder} messages received out of seq order (${worst('outOfOrder')})`);
  if (totals.withoutSeq) failures.push(`${totals.withoutSeq} messages received without seq (${worst('withoutSeq')})`);
  if (totals.notStored) failures.push(`${totals.notStored} received messages that history does not hold under that seq (${worst('notStored')})`);
  if (totals.notConnectedAtEnd) failures.push(`${totals.notConnectedAtEnd} clients not back in their session at the end`);

  // --- presence after the faults stopped ---
  const presence = { ghosts: 0, missing: 0, unanswered: 0, details: [] as string[] };
  for (const view of input.presence) {
    const really = new Set(view.connected);
    for (const [node, listed] of Object.entries(view.byNode)) {
      if (listed === null) {
        presence.unanswered++;
        presence.details.push(`${node} did not answer for session ${view.sessionId}`);
        continue;
      }
      const ghosts = listed.filter((u) => !really.has(u));
      const missing = view.connected.filter((u) => !listed.includes(u));
      presence.ghosts += ghosts.length;
      presence.missing += missing.length;
      if (ghosts.length || missing.length) {
        presence.details.push(`${node} session ${view.sessionId.slice(0, 8)}: ghosts [${ghosts.join(' ')}] missing [${missing.join(' ')}]`);
      }
    }
  }
  if (presence.ghosts) failures.push(`${presence.ghosts} participants listed who are not connected`);
  if (presence.missing) failures.push(`${presence.missing} connected participants not listed`);
  if (presence.unanswered) failures.push(`${presence.unanswered} participant lists not served`);

  // --- processes ---
  const unexplained = input.exits.filter((e) => !e.expected);
  const sigtermed = input.faults.filter((f) => f.kind === 'node-sigterm');
  const uncleanSigterm = sigtermed.filter((f) => f.exitCode !== 0).length;
  const unrecovered = input.faults.filter((f) => f.recoveredMs === null || (f.note ?? '').startsWith('fault failed')).length;
  for (const e of unexplained) failures.push(`${e.process} (pid ${e.pid}) died by itself at ${(e.at / 1000).toFixed(1)} s, exit ${e.code}`);
  if (uncleanSigterm) failures.push(`${uncleanSigterm} SIGTERMed nodes did not exit 0 within 12 s`);
  if (unrecovered) failures.push(`${unrecovered} faults after which the cluster did not become healthy (or the fault itself failed)`);

  // --- the spirit's answers ---
  const answered = new Set<number>();
  for (const c of input.clients) {
    for (const e of c.log) if (e.type === 'message' && e.m.reply_to !== undefined) answered.add(e.m.reply_to);
  }
  const spirit = { questions: 0, answers: 0, unanswered: 0, byFault: {} as Record<string, number> };
  for (const stored of input.history.values()) {
    const questions = stored.filter((m) => !m.is_spirit);
    spirit.questions += questions.length;
    spirit.answers += stored.length - questions.length;
    for (const q of questions.filter((m) => !answered.has(m.id))) {
      const t = Date.parse(q.timestamp) - input.startedAt;
      const fault = input.faults.find((f) => t >= f.at - input.answerDelayMs - 500 && t <= f.at + f.durationMs + (f.recoveredMs ?? 0));
      const key = fault ? fault.kind : 'no fault';
      spirit.byFault[key] = (spirit.byFault[key] ?? 0) + 1;
    }
  }
  // Counted from history (an answer nobody saw live has no known question, so the window split may be off by those).
  spirit.unanswered = spirit.questions - spirit.answers;
  if (spirit.unanswered > 0) failures.push(`${spirit.unanswered} questions without an answer`);
  if (spirit.unanswered < 0) failures.push(`${-spirit.unanswered} more answers than questions`);

  const sessions = new Set(input.clients.map((c) => c.spec.sessionId)).size;
  return {
    durationMs: input.durationMs,
    clients: input.clients.length,
    sessions,
    transports,
    faults: input.faults,
    messages: msg,
    perClient,
    totals,
    presence,
    spirit,
    processes: { exits: input.exits, unexplained: unexplained.length, uncleanSigterm, unrecovered },
    pagedBy: input.pagedBy,
    failures,
  };
}
