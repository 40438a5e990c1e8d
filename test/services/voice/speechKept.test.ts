/**
 * How long spoken audio is kept, on the real database (SQLite and PostgreSQL): audio made for
 * any text stays within TTS_CACHE_MAX_BYTES, least recently used first out; an answer's audio
 * stays as long as its message, and goes with it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import bunyan from 'bunyan';
import { Op } from 'sequelize';
import { loadConfig } from '../../../config';
import { createDatabase, type Database } from '../../../server/db';
import { speechKey, VoiceService } from '../../../server/services/voice';
import type { SpokenAudio, VoiceProvider } from '../../../server/services/voice/types';
import { sequelizeMaintenance, sequelizeStores } from '../../../server/storage/sequelize';
import { sharedPostgres } from '../../support/hooks';

const quiet = bunyan.createLogger({ name: 't', level: 'fatal' });
const AUDIO_BYTES = 4000;

/** A paid-provider stand-in: AUDIO_BYTES of audio per text, and a record of what it was asked. */
function countingProvider() {
  const calls: string[] = [];
  const provider: VoiceProvider = {
    name: 'openai',
    fingerprint: 'test',
    voiceFor: (requested) => requested ?? 'onyx',
    async speak(text: string): Promise<SpokenAudio> {
      calls.push(text);
      return { bytes: Buffer.alloc(AUDIO_BYTES, calls.length), contentType: 'audio/mpeg' };
    },
  };
  return { provider, calls };
}

for (const dialect of ['sqlite', 'postgres'] as const)
  describe(`spoken audio kept on ${dialect}`, function () {
    this.timeout(30_000);
    let db: Database;
    let dir: string | null = null;

    before(async () => {
      let url: string;
      if (dialect === 'sqlite') {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seance-speech-'));
        url = `sqlite:${path.join(dir, 'speech.sqlite')}`;
      } else url = (await sharedPostgres()).url;
      db = createDatabase(loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET: 'speech-test-secret-0123456789abcdef0123' }), quiet);
      await db.migrate();
    });
    after(async () => {
      await db?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    function voiceWith(cacheMaxBytes: number) {
      const { provider, calls } = countingProvider();
      const config = { ...loadConfig({ NODE_ENV: 'test', TTS_PROVIDER: 'openai' }).voice, cacheMaxBytes };
      const stores = sequelizeStores(db, `node-${randomUUID().slice(0, 8)}`);
      return { voice: new VoiceService({ config, store: stores.audio, logger: quiet, provider }), calls, stores };
    }

    /** What the generated (message-less) rows of these texts weigh, and which are there. */
    async function kept(texts: string[]): Promise<{ bytes: number; texts: string[] }> {
      const rows = await db.models.SpokenAudio.findAll({ where: { message_id: null, byte_length: { [Op.ne]: null } }, attributes: ['content_key', 'byte_length'] });
      const { provider } = countingProvider();
      const byKey = new Map(texts.map((t) => [speechKey(provider, 'onyx', t), t]));
      const ours = rows.filter((r) => byKey.has(r.content_key!));
      return { bytes: ours.reduce((sum, r) => sum + r.byte_length!, 0), texts: ours.map((r) => byKey.get(r.content_key!)!).sort() };
    }

    it('keeps audio of any text within TTS_CACHE_MAX_BYTES, least recently used first out', async () => {
      // Room for two texts; the other tests' rows share the table, so the texts are this run's own.
      await db.models.SpokenAudio.destroy({ where: { message_id: null } });
      const { voice, calls } = voiceWith(2 * AUDIO_BYTES + 100);
      const [a, b, c, d] = ['A', 'B', 'C', 'D'].map((t) => `${t} ${randomUUID()}`);
      await voice.speak(a);
      await voice.speak(b);
      expect(await kept([a, b, c, d])).to.deep.equal({ bytes: 2 * AUDIO_BYTES, texts: [a, b].sort() });
      await voice.speak(a); // a is now used more recently than b
      await voice.speak(c);
      expect(await kept([a, b, c, d])).to.deep.equal({ bytes: 2 * AUDIO_BYTES, texts: [a, c].sort() });
      await voice.speak(d);
      expect((await kept([a, b, c, d])).bytes).to.be.at.most(2 * AUDIO_BYTES + 100);
      expect(calls).to.deep.equal([a, b, c, d]);
      await voice.close();
    });

    it("keeps an answer's audio whatever the budget, and deletes it with its message", async () => {
      const { voice, calls, stores } = voiceWith(64 * 1024);
      const session = await stores.sessions.create({ name: 'Kept', max_users: 6 });
      const author = { id: 'u-1', name: 'Ann', joined_at: new Date().toISOString() };
      const text = `Yes ${randomUUID()}`;
      const { answer } = await stores.messages.storeExchange(session.id, author, 'Is anyone there?', text);
      const spoken = await voice.speakAnswer(answer.id, text);
      // The same text through tts/generate is a copy of it, not a second call to the provider.
      const generated = await voice.speak(text);
      expect(generated.bytes.equals(spoken.bytes)).to.equal(true);
      expect(calls).to.deep.equal([text]);
      // Past the budget, generated audio goes; the answer's stays.
      const { voice: small } = voiceWith(AUDIO_BYTES);
      await small.speak(`Other ${randomUUID()}`);
      expect(await db.models.SpokenAudio.count({ where: { message_id: answer.id } })).to.equal(1);

      const maintenance = sequelizeMaintenance(db);
      expect(await maintenance.endIfActive(session.id, new Date(Date.now() - 60_000))).to.equal(true);
      expect(await maintenance.deleteExpiredMessages(new Date(), 100)).to.be.at.least(2);
      expect(await db.models.SpokenAudio.count({ where: { message_id: answer.id } })).to.equal(0);
      await voice.close();
      await small.close();
    });
  });
