/**
 * Where a message is ordered: every connection on this node receives its session's stored
 * messages (`message_received`, `spirit_response`) in `seq` order with no gap and no repeat,
 * whatever happened between nodes.
 *
 * One feed per session this node serves remembers the last seq it delivered. An event whose
 * seq is the next one goes out at once, which is all the work there is while nothing is
 * missing (a map lookup and a comparison). An event further ahead waits; if the hole before it
 * is still open after GAP_GRACE_MS (a message lost between nodes, or merely overtaken), the
 * missing messages are read from the database and delivered first. A seq already delivered is
 * dropped. An ordered event this node cannot place (no seq: a node of the previous release),
 * or a message it cannot read at all, makes it read the session's new messages from the
 * database instead. A lost last message, with nothing after it to reveal the hole, is found
 * when the session has been quiet for QUIET_CHECK_MS and when the Redis subscription comes
 * back after an outage.
 *
 * Joins: the feed is opened (the node subscribed to the session) before the join reads
 * history, and the connection starts listening only once the feed has delivered at least what
 * that history holds, in the same tick as it is given what the feed delivered beyond it
 * (`since`): no stored message is missed or shown twice between `session_joined` and the
 * live events.
 */
import { performance } from 'node:perf_hooks';
import type { ChatMessageView, HistoryMessageView, ServerEventData } from '../events';
import type { Logger } from '../logger';
import type { SessionSubscriptions } from '../services/ports';
import { eventOf, historyItemOf, type AudioUrl } from '../services/messageEvents';
import type { MessageStore } from '../storage/ports';

/** How long a hole may stay open before the missing messages are read from the database. */
export const GAP_GRACE_MS = 50;
/** A session quiet this long checks once that nothing after its last delivery went missing. */
const QUIET_CHECK_MS = 2_000;
/**
 * Delivered events kept per session, for joins whose history read ends before them (a join
 * is usually a message or two behind; one further behind reads the rest from the database).
 * Small, and only the payload is kept: every event this ring holds lives for as many events of
 * its session after it, long enough at a busy session's pace to outlive a young-generation
 * collection, and whatever outlives two is copied into the old generation (with 16 events and
 * the packets around them, most of a node's promoted memory, and scavenge pauses of 5 ms).
 */
const RECENT = 4;
/** Messages read from the database per repair query. */
const REPAIR_BATCH = 500;

export type OrderedEventName = 'message_received' | 'spirit_response';
type OrderedData = ChatMessageView | ServerEventData<'spirit_response'>;

/** The events that carry a stored message: the only ones a feed orders. */
export const isOrderedEvent = (event: unknown): event is OrderedEventName => event === 'message_received' || event === 'spirit_response';

/** A stored message's event as it reached this node (from this node or another). */
export interface Arrival {
  sessionId: string;
  /** Its seq; null when the sender numbers nothing (a node of the previous release). */
  seq: number | null;
  event: OrderedEventName;
  data: OrderedData;
  /** When it reached this node (performance.now()), for the delivery timing. */
  arrived: number;
}

/** What the feeds report, for metrics (`seance_gap_repairs_total`, `seance_delivery_seconds`). */
export interface DeliveryObserver {
  /** A hole this node filled from the database. */
  gapRepaired(): void;
  /** Seconds from an event's arrival to its delivery here. */
  delivered(seconds: number): void;
}

/** What the feeds need of the layers around them: this node subscribed to a session, and its listeners. */
export interface FeedOutput {
  /** Keeps this node subscribed to the session's events; resolves once the subscription holds. */
  hold(sessionId: string): Promise<void>;
  release(sessionId: string): void;
  /** Hands an event, in its turn, to this node's listeners of the session (both transports). */
  deliver(sessionId: string, event: OrderedEventName, data: OrderedData): void;
}

interface Held {
  seq: number;
  event: OrderedEventName;
  data: OrderedData;
  arrived: number;
}

/** What the ring keeps of a delivered event: what a join's history needs. */
interface Recent {
  seq: number;
  event: OrderedEventName;
  data: OrderedData;
}

interface Feed {
  sessionId: string;
  /** Local connections holding the feed open. */
  holders: number;
  /** The last seq delivered here; null until the first join tells where to start. */
  delivered: number | null;
  /** Events ahead of `delivered`, by seq (before the start is known: all of them). */
  ahead: Map<number, Held>;
  /** The last RECENT delivered, oldest first from `recentStart` (a ring). */
  recent: Recent[];
  recentStart: number;
  waiters: Array<{ seq: number; resolve: () => void }>;
  gapTimer: NodeJS.Timeout | null;
  quietTimer: NodeJS.Timeout | null;
  repairing: Promise<void> | null;
}

const NO_OBSERVER: DeliveryObserver = { gapRepaired: () => undefined, delivered: () => undefined };

export class SessionFeeds implements SessionSubscriptions {
  private readonly feeds = new Map<string, Feed>();
  private readonly log: Logger;

  constructor(
    private readonly output: FeedOutput,
    private readonly messages: MessageStore,
    logger: Logger,
    private readonly observer: DeliveryObserver = NO_OBSERVER,
    /** Where a repaired answer's audio is served (as its live event says). */
    private readonly audioUrl: AudioUrl = () => null,
  ) {
    this.log = logger.child({ component: 'ordering' });
  }

  async open(sessionId: string): Promise<void> {
    let feed = this.feeds.get(sessionId);
    if (!feed) {
      feed = {
        sessionId,
        holders: 0,
        delivered: null,
        ahead: new Map(),
        recent: [],
        recentStart: 0,
        waiters: [],
        gapTimer: null,
        quietTimer: null,
        repairing: null,
      };
      this.feeds.set(sessionId, feed);
    }
    feed.holders += 1;
    try {
      await this.output.hold(sessionId);
    } catch (err) {
      this.close(sessionId);
      throw err;
    }
  }

  close(sessionId: string): void {
    const feed = this.feeds.get(sessionId);
    if (!feed || --feed.holders > 0) return;
    this.feeds.delete(sessionId);
    this.stopTimers(feed);
    for (const waiter of feed.waiters) waiter.resolve();
    this.output.release(sessionId);
  }

  /**
   * Takes a stored message's event that reached this node; it goes out in its turn. Returns
   * false when this node has no feed for the session (nobody here listens to it).
   */
  route(arrival: Arrival): boolean {
    const feed = this.feeds.get(arrival.sessionId);
    if (!feed) return false;
    const { seq, event, data, arrived } = arrival;
    if (seq === null) {
      // Sent by a node that does not number its events: read the session from the database.
      this.scheduleRepair(feed, 0);
      return true;
    }
    this.accept(feed, { seq, event, data, arrived });
    return true;
  }

  /** A message for this session could not be read: whatever it was, the database has it. */
  unreadable(sessionId: string): void {
    const feed = this.feeds.get(sessionId);
    if (feed) this.scheduleRepair(feed, 0);
  }

  /** After an outage of the cluster's channel: every session checks the database for what it missed. */
  repairAll(): void {
    for (const feed of this.feeds.values()) if (feed.delivered !== null) this.scheduleRepair(feed, 0);
  }

  /**
   * Resolves once this node has delivered the session up to `seq` (a joining connection's
   * history ends there). The first join of a session on this node starts its feed there.
   */
  async settle(sessionId: string, seq: number): Promise<void> {
    const feed = this.feeds.get(sessionId);
    if (!feed) return;
    if (feed.delivered === null) {
      feed.delivered = seq;
      this.drain(feed);
      if (feed.ahead.size > 0) this.scheduleRepair(feed, GAP_GRACE_MS);
      this.watchQuiet(feed);
      return;
    }
    if (feed.delivered >= seq) return;
    const reached = new Promise<void>((resolve) => feed.waiters.push({ seq, resolve }));
    // The database has it: a short wait for the live event, then read it.
    this.scheduleRepair(feed, GAP_GRACE_MS);
    await reached;
  }

  /** What the feed delivered after `seq`, as history items; null when that reaches further back than it keeps. */
  since(sessionId: string, seq: number): HistoryMessageView[] | null {
    const feed = this.feeds.get(sessionId);
    if (!feed || feed.delivered === null || feed.delivered <= seq) return [];
    const after = this.recentInOrder(feed).filter((held) => held.seq > seq);
    if (after.length !== feed.delivered - seq) return null;
    return after.map((held) => historyItemOf(held.event, held.data));
  }

  private accept(feed: Feed, held: Held): void {
    if (feed.delivered !== null && held.seq <= feed.delivered) return; // already delivered: a repeat
    if (feed.delivered !== null && held.seq === feed.delivered + 1 && feed.ahead.size === 0) {
      this.deliver(feed, held);
      return;
    }
    feed.ahead.set(held.seq, held);
    if (feed.delivered === null) return; // the first join will say where to start
    this.drain(feed);
    if (feed.ahead.size > 0) this.scheduleRepair(feed, GAP_GRACE_MS);
  }

  /** Delivers what is now next in line, and drops what is behind. */
  private drain(feed: Feed): void {
    for (;;) {
      const delivered = feed.delivered!;
      for (const seq of feed.ahead.keys()) if (seq <= delivered) feed.ahead.delete(seq);
      const next = feed.ahead.get(delivered + 1);
      if (!next) break;
      feed.ahead.delete(next.seq);
      this.deliver(feed, next);
    }
    if (feed.ahead.size === 0 && feed.gapTimer) {
      clearTimeout(feed.gapTimer);
      feed.gapTimer = null;
    }
  }

  private recentInOrder(feed: Feed): Recent[] {
    return feed.recent.length < RECENT ? feed.recent : [...feed.recent.slice(feed.recentStart), ...feed.recent.slice(0, feed.recentStart)];
  }

  private deliver(feed: Feed, held: Held): void {
    feed.delivered = held.seq;
    const kept: Recent = { seq: held.seq, event: held.event, data: held.data };
    if (feed.recent.length < RECENT) feed.recent.push(kept);
    else {
      feed.recent[feed.recentStart] = kept;
      feed.recentStart = (feed.recentStart + 1) % RECENT;
    }
    this.output.deliver(feed.sessionId, held.event, held.data);
    this.observer.delivered((performance.now() - held.arrived) / 1000);
    if (feed.waiters.length > 0) {
      const due = feed.waiters.filter((w) => w.seq <= held.seq);
      if (due.length > 0) {
        feed.waiters = feed.waiters.filter((w) => w.seq > held.seq);
        for (const waiter of due) waiter.resolve();
      }
    }
    this.watchQuiet(feed);
  }

  private watchQuiet(feed: Feed): void {
    if (feed.quietTimer) feed.quietTimer.refresh();
    else {
      feed.quietTimer = setTimeout(() => void this.checkQuiet(feed), QUIET_CHECK_MS);
      feed.quietTimer.unref();
    }
  }

  /** The session went quiet: one look at its counter tells whether its last message passed us by. */
  private async checkQuiet(feed: Feed): Promise<void> {
    feed.quietTimer = null;
    if (this.feeds.get(feed.sessionId) !== feed || feed.delivered === null) return;
    try {
      if ((await this.messages.latestSeq(feed.sessionId)) > feed.delivered) this.scheduleRepair(feed, 0);
    } catch (err) {
      this.log.warn({ err, session_id: feed.sessionId }, 'could not check a quiet session for missed messages');
    }
  }

  private scheduleRepair(feed: Feed, delayMs: number): void {
    if (feed.gapTimer || feed.repairing) return;
    feed.gapTimer = setTimeout(() => {
      feed.gapTimer = null;
      void this.repair(feed);
    }, delayMs);
    feed.gapTimer.unref();
  }

  /** Reads what this node has not delivered from the database and delivers it in order. */
  private repair(feed: Feed): Promise<void> {
    feed.repairing ??= this.runRepair(feed).finally(() => {
      feed.repairing = null;
      if (this.feeds.get(feed.sessionId) !== feed) return;
      // Still waiting for something (it may not be stored yet, or the read failed): look again.
      if (feed.ahead.size > 0 || feed.waiters.length > 0) this.scheduleRepair(feed, GAP_GRACE_MS);
    });
    return feed.repairing;
  }

  private async runRepair(feed: Feed): Promise<void> {
    if (feed.delivered === null) return;
    try {
      for (;;) {
        const from: number = feed.delivered;
        const rows = await this.messages.after(feed.sessionId, from, REPAIR_BATCH);
        if (this.feeds.get(feed.sessionId) !== feed) return;
        let filled = 0;
        for (const row of rows) {
          const delivered: number = feed.delivered;
          if (row.seq <= delivered) continue;
          if (row.seq !== delivered + 1) break; // not committed yet: the next round reads it
          const live = feed.ahead.get(row.seq);
          feed.ahead.delete(row.seq);
          const { event, data } = eventOf(row, this.audioUrl);
          this.deliver(feed, live ?? { seq: row.seq, event, data, arrived: performance.now() });
          if (!live) filled += 1;
        }
        if (filled > 0) {
          this.observer.gapRepaired();
          this.log.debug({ session_id: feed.sessionId, from, filled }, 'filled a hole from the database');
        }
        this.drain(feed);
        if (rows.length < REPAIR_BATCH || feed.delivered === from) return;
      }
    } catch (err) {
      this.log.warn({ err, session_id: feed.sessionId }, 'could not read missed messages; trying again');
    }
  }

  private stopTimers(feed: Feed): void {
    if (feed.gapTimer) clearTimeout(feed.gapTimer);
    if (feed.quietTimer) clearTimeout(feed.quietTimer);
    feed.gapTimer = feed.quietTimer = null;
  }
}
