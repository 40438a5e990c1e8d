/**
 * Steady chat traffic for outage tests: one socket.io sender paced at a fixed interval,
 * bounded in count, recording which messages the server accepted and which it refused.
 */
import { sendWithAck, type TestSocket } from './clients';

export interface TrafficResult {
  accepted: number[];
  refused: Array<{ text: string; code: string }>;
}

export class Traffic {
  private running = true;
  private readonly done: Promise<TrafficResult>;
  readonly result: TrafficResult = { accepted: [], refused: [] };

  constructor(sender: TestSocket, opts: { intervalMs?: number; maxMessages?: number; label?: string } = {}) {
    const { intervalMs = 25, maxMessages = 2000, label = 'traffic' } = opts;
    this.done = (async () => {
      for (let i = 0; this.running && i < maxMessages; i++) {
        const text = `${label} ${i}`;
        const ack = await sendWithAck(sender, { message: text }, 20_000);
        if (ack.ok) this.result.accepted.push(ack.id);
        else this.result.refused.push({ text, code: ack.error.code });
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
      return this.result;
    })();
  }

  /** Resolves once `count` more messages were accepted than when called. */
  async acceptedMore(count: number, timeoutMs = 20_000): Promise<void> {
    const target = this.result.accepted.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.result.accepted.length < target) {
      if (!this.running || Date.now() > deadline) throw new Error(`traffic: only ${this.result.accepted.length}/${target} accepted`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Resolves once the server has refused at least one message since the call. */
  async refusedSome(timeoutMs = 20_000): Promise<void> {
    const seen = this.result.refused.length;
    const deadline = Date.now() + timeoutMs;
    while (this.result.refused.length === seen) {
      if (Date.now() > deadline) throw new Error('traffic: nothing was refused');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  stop(): Promise<TrafficResult> {
    this.running = false;
    return this.done;
  }
}
