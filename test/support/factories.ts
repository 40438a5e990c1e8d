/** Small builders of test data: each test makes its own session. */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { http } from './clients';

export async function createSession(baseUrl: string, overrides: Record<string, unknown> = {}): Promise<any> {
  const reply = await http(baseUrl, 'POST', '/api/sessions', { json: { name: `Séance ${randomUUID().slice(0, 8)}`, ...overrides } });
  expect(reply.status, reply.text).to.equal(201);
  return reply.body.data;
}

export function userId(prefix = 'u'): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/** Every message of a session, oldest first, following next_cursor page by page. */
export async function wholeHistory(baseUrl: string, sessionId: string): Promise<any[]> {
  const pages: any[][] = [];
  let before: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const reply = await http(baseUrl, 'GET', `/api/sessions/${sessionId}/history?limit=100${before ? `&before=${before}` : ''}`);
    expect(reply.status, reply.text).to.equal(200);
    pages.unshift(reply.body.data);
    before = reply.body.meta.next_cursor;
    if (before === null) return pages.flat();
  }
  throw new Error(`history of ${sessionId} did not end within 1000 pages`);
}
