/**
 * Answers a question this node owes: the session's context, the spirit (its provider, the
 * retries and the oracle's fallback), the answer stored only while this node still owes it
 * (the store clears the debt in the same write), then `spirit_response` to the session on
 * every node. A question asked here and one taken over from a node that is gone are answered
 * the same way, so the answer's rules are the same: its seq after its question's, its
 * timestamp not before it.
 */
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Broadcaster } from './ports';
import type { MessageStore, OwedQuestion } from '../storage/ports';
import { AnswerRetry, type AnswerRetryOptions } from './answerRetry';
import { spiritResponse } from './messageEvents';
import type { SpiritService } from './spirit';

const SPIRIT_CONTEXT = 10;

export interface SpiritAnswersDeps {
  /** This node's NODE_ID: the owner its questions are stored under. */
  nodeId: string;
  messages: MessageStore;
  spirit: SpiritService;
  broadcaster: Broadcaster;
  logger: Logger;
  metrics?: Metrics;
  /** Where an answer's audio is served, or null when speech is off. */
  audioUrl: (sessionId: string, messageId: number) => string | null;
  /** Bounds of an answer's store retried through a database outage (tests shorten them). */
  answerRetry?: AnswerRetryOptions;
}

/** What became of an owed question: answered here, owed by another node by now, or failed (still owed: the sweep tries again). */
export type AnswerOutcome = 'answered' | 'not-owed' | 'failed';

export class SpiritAnswers {
  readonly nodeId: string;
  /** The questions being answered on this node, by id (the sweep leaves them alone; shutdown waits for them). */
  private readonly answering = new Map<number, Promise<AnswerOutcome>>();
  private readonly retry: AnswerRetry;
  private readonly log: Logger;

  constructor(private readonly deps: SpiritAnswersDeps) {
    this.nodeId = deps.nodeId;
    this.log = deps.logger.child({ component: 'spirit-answers' });
    this.retry = new AnswerRetry(deps.messages, this.log, deps.answerRetry);
  }

  isAnswering(questionId: number): boolean {
    return this.answering.has(questionId);
  }

  /** Answers a question this node owes; the same question twice on this node is answered once. Never rejects. */
  answer(question: Omit<OwedQuestion, 'owner'>): Promise<AnswerOutcome> {
    let work = this.answering.get(question.id);
    if (!work) {
      work = this.make(question).finally(() => this.answering.delete(question.id));
      this.answering.set(question.id, work);
    }
    return work;
  }

  /** Resolves once every answer under way on this node is stored and sent, or has failed. */
  async drain(): Promise<void> {
    while (this.answering.size > 0) await Promise.allSettled([...this.answering.values()]);
  }

  private async make(question: Omit<OwedQuestion, 'owner'>): Promise<AnswerOutcome> {
    const { spirit, messages, broadcaster } = this.deps;
    const sessionId = question.session_id;
    try {
      // The prompt's context is a nicety: a database away for a moment does not cost the answer.
      const history = spirit.needsHistory
        ? await messages.recent(sessionId, SPIRIT_CONTEXT).catch((err: unknown) => {
            this.log.warn({ err, session_id: sessionId }, 'spirit context unavailable: answering without it');
            return [];
          })
        : [];
      const reply = await spirit.reply({
        sessionId,
        question: question.message,
        askedBy: question.user_name ?? 'someone',
        history: history.filter((m) => m.seq <= question.seq).map((m) => ({ user_name: m.user_name, message: m.message, is_spirit: m.is_spirit })),
        askedAt: Date.parse(question.timestamp),
      });
      const stored = await this.retry.store(sessionId, question.id, this.nodeId, reply.message);
      if (!stored) {
        this.log.info({ session_id: sessionId, in_reply_to: question.id }, 'spirit answer not stored: another node owes it now');
        return 'not-owed';
      }
      broadcaster.toSession(sessionId, 'spirit_response', spiritResponse(stored, question.id, reply, this.deps.audioUrl(sessionId, stored.id)));
      return 'answered';
    } catch (err) {
      this.log.error({ err, session_id: sessionId, in_reply_to: question.id }, 'spirit answer failed');
      return 'failed';
    }
  }
}
