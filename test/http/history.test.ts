import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { http, joinSocket, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { startTestServer, type TestServer } from '../support/server';

for (const database of ['postgres', 'sqlite'] as const)
  describe(`GET /api/sessions/{id}/history on ${database}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({ database, env: { MESSAGE_RATE_LIMIT: '1000' } });
    });
    after(async () => server?.close());

    it('pages backwards with next_cursor, oldest first within a page, null at the start', async () => {
      const session = await createSession(server.url);
      const socket = await joinSocket(server.url, { session_id: session.id, name: 'Scribe', user_id: 'scribe' });
      for (let i = 0; i < 7; i++) await sendWithAck(socket, { message: `m${i}` });
      await socket.inbox.waitForCount('spirit_response', 7);
      socket.close();

      const all = (await http(server.url, 'GET', `/api/sessions/${session.id}/history?limit=100`)).body;
      expect(all.data).to.have.length(14);
      expect(all.meta.next_cursor).to.equal(null);
      const first = all.data[0];
      const live = socket.inbox.of('message_received')[0];
      expect(first).to.deep.equal({ ...live, is_spirit: false });
      expect(first).to.have.all.keys('id', 'seq', 'session_id', 'user_id', 'user_name', 'message', 'is_spirit', 'timestamp');
      expect(all.data.map((m: any) => m.seq)).to.deep.equal(Array.from({ length: 14 }, (_, i) => i + 1));
      expect(first).to.include({ session_id: session.id, user_id: 'scribe', user_name: 'Scribe', message: 'm0', is_spirit: false });
      const spirit = all.data.find((m: any) => m.is_spirit);
      expect(spirit).to.include({ user_id: null, user_name: null });

      const pages: any[][] = [];
      let cursor: string | null | undefined;
      do {
        const reply = await http(server.url, 'GET', `/api/sessions/${session.id}/history?limit=5${cursor ? `&before=${cursor}` : ''}`);
        expect(reply.status).to.equal(200);
        pages.push(reply.body.data);
        cursor = reply.body.meta.next_cursor;
      } while (cursor);
      expect(pages.map((p) => p.length)).to.deep.equal([5, 5, 4]);
      expect(
        pages
          .reverse()
          .flat()
          .map((m) => m.id),
      ).to.deep.equal(all.data.map((m: any) => m.id));
    });

    it('defaults to the last 50 messages', async () => {
      const session = await createSession(server.url);
      const reply = await http(server.url, 'GET', `/api/sessions/${session.id}/history`);
      expect(reply.body).to.deep.include({ success: true, data: [] });
      expect(reply.body.meta.next_cursor).to.equal(null);
    });

    it('pages forwards with after_seq: the messages after it, oldest first, at most limit', async () => {
      const session = await createSession(server.url);
      const socket = await joinSocket(server.url, { session_id: session.id, name: 'Scribe', user_id: 'scribe' });
      for (let i = 0; i < 4; i++) await sendWithAck(socket, { message: `m${i}` });
      await socket.inbox.waitForCount('spirit_response', 4);
      socket.close();
      const seqs = async (query: string) => (await http(server.url, 'GET', `/api/sessions/${session.id}/history?${query}`)).body.data.map((m: any) => m.seq);
      expect(await seqs('after_seq=0')).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(await seqs('after_seq=3&limit=2')).to.deep.equal([4, 5]);
      expect(await seqs('after_seq=8')).to.deep.equal([]);
      expect(await seqs('after_seq=99')).to.deep.equal([]);
      const page = (await http(server.url, 'GET', `/api/sessions/${session.id}/history?after_seq=6`)).body.data;
      expect(page[0]).to.have.all.keys('id', 'seq', 'session_id', 'user_id', 'user_name', 'message', 'is_spirit', 'timestamp');
      expect(page.map((m: any) => m.message)).to.deep.include.members(['m3']);
    });

    for (const query of [
      'limit=0',
      'limit=101',
      'limit=abc',
      'before=xyz',
      'before=-1',
      'limit=1&limit=2',
      'after_seq=-1',
      'after_seq=1.5',
      'after_seq=abc',
      'after_seq=1&after_seq=2',
      'after_seq=1&before=5',
    ]) {
      it(`refuses ?${query} with 400 VALIDATION_ERROR`, async () => {
        const session = await createSession(server.url);
        const reply = await http(server.url, 'GET', `/api/sessions/${session.id}/history?${query}`);
        expect(reply.status).to.equal(400);
        expect(reply.body.error.code).to.equal('VALIDATION_ERROR');
      });
    }

    it('answers 404 for unknown and malformed sessions', async () => {
      for (const id of [randomUUID(), 'nope']) {
        const reply = await http(server.url, 'GET', `/api/sessions/${id}/history`);
        expect(reply.status).to.equal(404);
        expect(reply.body.error.code).to.equal('SESSION_NOT_FOUND');
      }
    });
  });
