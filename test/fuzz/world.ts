/**
 * What the fuzz surfaces share: the live node, the sessions and tokens they aim at, the
 * ledger of messages the server accepted (history is checked against it at the end), the
 * findings to report, and a small waiter for one connection's replies.
 */
import fs from 'node:fs';
import type { NodeHandle } from '../../harness/node';
import type { HttpFuzzClient } from './drivers';
import { describe } from './drivers';
import type { TokenKit } from './generators';
import type { SessionState } from './reference';

export interface World {
  node: NodeHandle;
  wsUrl: string;
  http: HttpFuzzClient;
  /** Active sessions the realtime surfaces speak in. */
  eventSessions: string[];
  /** Active sessions the join fuzz aims at. */
  handshakeSessions: string[];
  /** Active sessions whose creator tokens are used as "someone else's" token: never a DELETE target. */
  decoySessions: string[];
  /** Ended with its creator token before the fuzz: joins get SESSION_INACTIVE. */
  endedSession: string;
  kit: TokenKit;
  findings: Findings;
  ledger: Ledger;
  counts: Record<string, number>;
}

/** Every session the fuzz may hit with a real id (DELETE targets exclude the decoys). */
export function realSessions(world: World): string[] {
  return [...world.eventSessions, ...world.handshakeSessions, world.endedSession];
}

export function sessionState(world: World, id: unknown): SessionState {
  if (typeof id !== 'string') return 'missing';
  const lower = id.toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(lower)) return 'missing';
  if (lower === world.endedSession) return 'inactive';
  return [...world.eventSessions, ...world.handshakeSessions, ...world.decoySessions].includes(lower) ? 'active' : 'missing';
}

export const isValidAccessToken = (world: World, token: string): boolean => world.kit.guest.includes(token);

export interface Finding {
  surface: string;
  index: number;
  input: string;
  problem: string;
}

/** Everything the server got wrong, kept with the exact input so it can be reported and replayed. */
export class Findings {
  readonly all: Finding[] = [];

  add(surface: string, index: number, input: unknown, problem: string): void {
    this.all.push({ surface, index, input: describe(input, 4000), problem });
  }

  of(surface: string): Finding[] {
    return this.all.filter((f) => f.surface === surface);
  }

  /** Throws one readable error listing the surface's findings (grouped, the first ones in full). */
  assertNone(surface: string, seed: number): void {
    const list = this.of(surface);
    if (list.length === 0) return;
    // FUZZ_REPORT=<file>: every finding with its input (up to 4,000 characters), as JSON lines.
    const report = process.env.FUZZ_REPORT;
    if (report) fs.appendFileSync(report, list.map((f) => JSON.stringify({ seed, ...f })).join('\n') + '\n');
    const kinds = new Map<string, number>();
    for (const f of list) {
      const kind = f.problem.split(': ')[0].replace(/\d+/g, 'N').slice(0, 110);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const summary = [...kinds].map(([k, n]) => `  ${n} × ${k}`).join('\n');
    const detail = list
      .slice(0, 25)
      .map((f) => `  #${f.index}: ${f.problem}\n      input: ${f.input.length > 400 ? `${f.input.slice(0, 400)}…` : f.input}`)
      .join('\n');
    throw new Error(`${list.length} finding(s) on ${surface} (replay with FUZZ_SEED=${seed}):\n${summary}\nfirst ones:\n${detail}`);
  }
}

export interface Accepted {
  message: string;
  user_name: string | null;
}

/** The messages the server said it accepted (message_received, acks), per session, by id. */
export class Ledger {
  private readonly bySession = new Map<string, Map<string, Accepted>>();

  record(m: { id: unknown; session_id: string; message: string; user_name?: string | null }): void {
    let messages = this.bySession.get(m.session_id);
    if (!messages) this.bySession.set(m.session_id, (messages = new Map()));
    messages.set(String(m.id), { message: m.message, user_name: m.user_name ?? null });
  }

  of(sessionId: string): Map<string, Accepted> {
    return this.bySession.get(sessionId) ?? new Map();
  }

  get sessions(): string[] {
    return [...this.bySession.keys()];
  }
}

/** One connection's replies as they come: errors, its own accepted messages, its closing. */
export class Tally {
  readonly errors: Array<{ code: string; message: string }> = [];
  readonly mine: any[] = [];
  readonly acks: any[] = [];
  closed: { code?: number; reason?: string } | null = null;
  private wake: (() => void) | null = null;

  notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Resolves true once `cond` holds, false after `timeoutMs`; re-checked on every notify. */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.wake = null;
          resolve();
        }, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  }
}
