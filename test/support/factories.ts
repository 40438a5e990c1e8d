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
