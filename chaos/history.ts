/** What the database kept, read the way a client would: REST history, paged forward by `after_seq`. */

export interface StoredMessage {
  id: number;
  seq: number | null;
  user_id: string | null;
  is_spirit: boolean;
  message: string;
  /** When it was stored (ISO 8601). */
  timestamp: string;
}

const PAGE = 100;
const MAX_PAGES = 10_000;

/** The REST envelope, as loosely as a client must read it. */
interface Envelope<T> {
  data?: T;
  meta?: { next_cursor?: string | null };
}
interface WireHistoryItem {
  id: number;
  seq?: number;
  user_id?: string | null;
  is_spirit?: boolean;
  message?: string;
  timestamp?: string;
}

async function getJson<T>(url: string): Promise<{ status: number; body: Envelope<T> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Envelope<T> };
  } catch {
    return { status: res.status, body: {} };
  }
}

function pick(m: WireHistoryItem): StoredMessage {
  return {
    id: m.id,
    seq: typeof m.seq === 'number' && Number.isInteger(m.seq) ? m.seq : null,
    user_id: m.user_id ?? null,
    is_spirit: m.is_spirit === true,
    message: String(m.message),
    timestamp: String(m.timestamp),
  };
}

/**
 * Every message of a session, in seq order. Pages forward with `after_seq`; a server that
 * does not know `after_seq` (400, or rows without seq) is read backwards with the cursor.
 */
export async function readHistory(baseUrl: string, sessionId: string): Promise<{ messages: StoredMessage[]; pagedBy: 'after_seq' | 'cursor' }> {
  const base = `${baseUrl}/api/sessions/${sessionId}/history`;
  const first = await getJson<WireHistoryItem[]>(`${base}?after_seq=0&limit=${PAGE}`);
  const firstPage = first.body.data;
  const hasSeq = first.status === 200 && Array.isArray(firstPage) && firstPage.every((m) => Number.isInteger(m.seq));
  if (hasSeq) {
    const messages: StoredMessage[] = firstPage.map(pick);
    let page: WireHistoryItem[] = firstPage;
    for (let i = 0; page.length === PAGE && i < MAX_PAGES; i++) {
      const after = messages[messages.length - 1].seq;
      const reply = await getJson<WireHistoryItem[]>(`${base}?after_seq=${after}&limit=${PAGE}`);
      if (reply.status !== 200 || !Array.isArray(reply.body.data)) throw new Error(`history of ${sessionId} after_seq=${after}: HTTP ${reply.status}`);
      page = reply.body.data;
      messages.push(...page.map(pick));
    }
    return { messages, pagedBy: 'after_seq' };
  }
  const pages: StoredMessage[][] = [];
  let before: string | null = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const reply: { status: number; body: Envelope<WireHistoryItem[]> } = await getJson<WireHistoryItem[]>(`${base}?limit=${PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`);
    if (reply.status !== 200 || !Array.isArray(reply.body.data)) throw new Error(`history of ${sessionId}: HTTP ${reply.status}`);
    pages.unshift(reply.body.data.map(pick));
    before = reply.body.meta?.next_cursor ?? null;
    if (before === null) break;
  }
  return { messages: pages.flat(), pagedBy: 'cursor' };
}

/** Participant ids a node reports for a session (cluster-wide presence, as that node sees it). */
export async function readParticipants(nodeUrl: string, sessionId: string): Promise<string[] | null> {
  try {
    const reply = await getJson<Array<{ id: string }>>(`${nodeUrl}/api/sessions/${sessionId}/participants`);
    if (reply.status !== 200 || !Array.isArray(reply.body.data)) return null;
    return reply.body.data.map((p) => p.id).sort();
  } catch {
    return null;
  }
}
