/**
 * A message reaches each listener as one write: message_received, spirit_thinking and the
 * oracle's spirit_response (and the sender's ack) leave in the same tick and go to the TCP
 * socket together, on both transports. Counted on the server's side of each connection.
 */
import type { Socket as NetSocket } from 'node:net';
import { expect } from 'chai';
import { RawClient, joinSocket, sendWithAck, type TestSocket } from '../../support/clients';
import { createSession } from '../../support/factories';
import { startTestServer, type TestServer } from '../../support/server';

/** Counts the writes each accepted connection hands to the kernel (stream _write/_writev calls). */
function countWrites(server: TestServer): Map<NetSocket, number> {
  const writes = new Map<NetSocket, number>();
  server.app.httpServer.on('connection', (socket: NetSocket) => {
    writes.set(socket, 0);
    const stream = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
    for (const method of ['_write', '_writev'] as const) {
      const original = stream[method];
      stream[method] = function (this: unknown, ...args: unknown[]) {
        writes.set(socket, (writes.get(socket) ?? 0) + 1);
        return original.apply(this, args);
      };
    }
  });
  return writes;
}

describe('write coalescing', () => {
  let server: TestServer;
  let writes: Map<NetSocket, number>;
  const open: Array<TestSocket | RawClient> = [];

  before(async () => {
    server = await startTestServer();
    writes = countWrites(server);
  });
  after(async () => {
    for (const c of open) c.close();
    await server.close();
  });

  it('sends each listener the message, spirit_thinking and spirit_response in one write, on both transports', async () => {
    const session = await createSession(server.url);
    const sender = await joinSocket(server.url, { session_id: session.id, user_id: 'sender', name: 'Sender' });
    const listener = await joinSocket(server.url, { session_id: session.id, user_id: 'listener', name: 'Listener' });
    const raw = await RawClient.join(server.wsUrl, session.id, { user_id: 'raw', name: 'Raw' });
    open.push(sender, listener, raw);
    // Every join has been announced to everyone before counting starts.
    await sender.inbox.waitFor('user_joined', (u) => u.id === 'raw');
    await listener.inbox.waitFor('user_joined', (u) => u.id === 'raw');

    for (let round = 1; round <= 3; round++) {
      const before = new Map(writes);
      const ack = await sendWithAck(sender, { message: `is anyone there? (${round})` });
      for (const client of [sender, listener, raw]) await client.inbox.waitFor('spirit_response', (r) => r.in_reply_to === ack.id);
      await new Promise((resolve) => setImmediate(resolve));
      const during = [...writes].map(([socket, count]) => count - (before.get(socket) ?? 0)).filter((count) => count > 0);
      // Sender (ack + three events), Socket.IO listener and raw listener: one write each
      // (the connection that created the session hears nothing).
      expect(during).to.deep.equal([1, 1, 1]);
    }
  });
});
