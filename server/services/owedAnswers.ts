/**
 * Every stored question gets its answer, whatever happens to the node that heard it. A
 * question waiting for the spirit is stored as owed by its node (`answer_owner`), and the
 * debt is cleared by the answer's own store; what a node leaves owed, the cluster pays:
 *
 * - Each node, every OWED_ANSWERS_INTERVAL_MS, answers the questions it owes and is not
 *   answering: a past life under the same NODE_ID died with them, or their store failed
 *   through a long database outage.
 * - The holder of a lease (one node at a time) takes over the questions owed by nodes whose
 *   presence heartbeat is gone (killed, or left presence as it drained on SIGTERM) and answers
 *   them itself. The takeover is a conditional update, and an answer is stored only while its
 *   node owes it, so two nodes never both answer one question.
 * - A question whose session ended is not answered, and one older than
 *   OWED_ANSWER_MAX_AGE_MINUTES is given up: the debt is cleared, and the question stays
 *   without an answer (counted in seance_spirit_answers_given_up_total).
 */
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { MessageStore, OwedQuestion, SessionStore } from '../storage/ports';
import type { Lease } from './maintenanceLease';
import type { Presence } from './presence/types';
import { Rounds } from './rounds';
import type { SpiritAnswers } from './spiritAnswers';

export interface OwedAnswersDeps {
  config: { intervalMs: number; maxAgeMs: number };
  messages: MessageStore;
  sessions: Pick<SessionStore, 'find'>;
  presence: Pick<Presence, 'isNodeAlive'>;
  answers: SpiritAnswers;
  lease: Lease;
  logger: Logger;
  metrics?: Metrics;
}

/** Questions one round looks at; more wait for the next round. */
const BATCH = 200;
/**
 * A question this node owes and is not answering is an orphan only once it is this old: one
 * stored a moment ago may not have reached its answering yet (its store's reply on the way).
 */
const OWN_GRACE_MS = 2_000;

export class OwedAnswers {
  private readonly log: Logger;
  private readonly rounds: Rounds;

  constructor(private readonly deps: OwedAnswersDeps) {
    this.log = deps.logger.child({ component: 'owed-answers' });
    this.rounds = new Rounds(deps.config.intervalMs, () => this.work().catch((err: unknown) => this.log.warn({ err }, 'owed answers: round failed; retrying next round')));
  }

  start(): void {
    this.rounds.start();
  }

  /** Stops looking (a draining node takes nothing more on) and lets the lease go at once. */
  async stop(): Promise<void> {
    await this.rounds.stop();
    await this.deps.lease.release();
  }

  /** One round now (the timer calls this; a round still running is not doubled). Never rejects. */
  runRound(): Promise<void> {
    return this.rounds.run();
  }

  private async work(): Promise<void> {
    const { messages, answers } = this.deps;
    const me = answers.nodeId;
    const now = Date.now();
    for (const question of await messages.owed({ owner: me, limit: BATCH })) {
      if (answers.isAnswering(question.id) || now - Date.parse(question.timestamp) < OWN_GRACE_MS) continue;
      await this.settle(question);
    }
    if (!(await this.deps.lease.acquire())) return;
    const alive = new Map<string, Promise<boolean>>();
    const isAlive = (node: string) => {
      let known = alive.get(node);
      if (!known) alive.set(node, (known = this.deps.presence.isNodeAlive(node)));
      return known;
    };
    for (const question of await messages.owed({ limit: BATCH })) {
      if (question.owner === me || (await isAlive(question.owner))) continue;
      await this.settle(question);
    }
  }

  /** Gives the question up, or answers it here (taking it over first when another node owes it). */
  private async settle(question: OwedQuestion): Promise<void> {
    const { messages, answers, metrics } = this.deps;
    const age = Date.now() - Date.parse(question.timestamp);
    const fields = { session_id: question.session_id, question_id: question.id, owner: question.owner, age_ms: age };
    const reason = age > this.deps.config.maxAgeMs ? 'too old' : (await this.deps.sessions.find(question.session_id))?.is_active ? null : 'session ended';
    if (reason) {
      if (await messages.giveUp(question.id, question.owner)) {
        metrics?.spiritAnswerGivenUp();
        this.log.warn({ ...fields, reason }, 'owed answer given up');
      }
      return;
    }
    if (question.owner !== answers.nodeId) {
      if (!(await messages.takeOver(question.id, question.owner, answers.nodeId))) return;
      metrics?.spiritAnswerTakenOver();
      this.log.info(fields, 'owed answer taken over from a node that is gone');
    }
    // Not awaited: a slow provider must not hold the other questions up.
    void answers.answer(question);
  }
}
