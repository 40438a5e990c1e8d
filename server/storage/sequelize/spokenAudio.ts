/**
 * Spoken audio in one table every node reads (see models/spokenAudio.ts). A claim is an
 * INSERT of the key with no data: the primary key lets exactly one node win, cluster-wide,
 * on PostgreSQL and SQLite alike.
 */
import { randomBytes } from 'node:crypto';
import { Op, QueryTypes, UniqueConstraintError } from 'sequelize';
import type { SpokenAudio } from '../../../models';
import type { AudioContentType, AudioLookup, AudioOwner, AudioStore, StoredAudio } from '../ports';

function storedAudio(row: SpokenAudio): StoredAudio {
  return {
    bytes: Buffer.from(row.data!),
    contentType: row.content_type as AudioContentType,
    digest: row.digest ?? '',
    provider: row.provider ?? '',
    fallback: row.fallback,
  };
}

export class SequelizeAudioStore implements AudioStore {
  constructor(
    private readonly model: typeof SpokenAudio,
    private readonly nodeId: string,
  ) {}

  async lookup(key: string): Promise<AudioLookup> {
    const row = await this.model.findByPk(key);
    if (!row) return { state: 'absent' };
    if (row.data === null) return { state: 'pending', claim: row.claimed_by, claimedAt: new Date(row.claimed_at) };
    return { state: 'ready', audio: storedAudio(row) };
  }

  async findContent(contentKey: string): Promise<StoredAudio | null> {
    const row = await this.model.findOne({ where: { content_key: contentKey, data: { [Op.ne]: null } } });
    return row ? storedAudio(row) : null;
  }

  async claim(key: string, voice: string, owner: AudioOwner): Promise<string | null> {
    const claim = this.newClaim();
    try {
      await this.model.create({
        key,
        claimed_by: claim,
        claimed_at: new Date(),
        data: null,
        content_type: null,
        byte_length: null,
        digest: null,
        provider: null,
        voice,
        content_key: owner.contentKey,
        message_id: owner.messageId,
      });
      return claim;
    } catch (err) {
      if (err instanceof UniqueConstraintError) return null;
      throw err;
    }
  }

  async takeOver(key: string, seen: string): Promise<string | null> {
    const claim = this.newClaim();
    const [count] = await this.model.update({ claimed_by: claim, claimed_at: new Date() }, { where: { key, claimed_by: seen, data: null } });
    return count === 1 ? claim : null;
  }

  async complete(key: string, claim: string, audio: StoredAudio): Promise<void> {
    await this.model.update(
      { data: audio.bytes, content_type: audio.contentType, byte_length: audio.bytes.length, digest: audio.digest, provider: audio.provider, fallback: audio.fallback, used_at: new Date() },
      { where: { key, claimed_by: claim, data: null } },
    );
  }

  async abandon(key: string, claim: string): Promise<void> {
    await this.model.destroy({ where: { key, claimed_by: claim, data: null } });
  }

  async touch(key: string): Promise<void> {
    await this.model.update({ used_at: new Date() }, { where: { key } });
  }

  async evict(maxBytes: number): Promise<number> {
    const sequelize = this.model.sequelize!;
    const q = (name: string) => sequelize.getQueryInterface().quoteIdentifier(name);
    // The audio of no message, newest use first, with the bytes kept so far: what passes the budget goes.
    const over = await sequelize.query<{ k: string }>(
      `SELECT k FROM (SELECT ${q('key')} AS k, SUM(${q('byte_length')}) OVER (ORDER BY ${q('used_at')} DESC, ${q('key')}) AS kept
       FROM ${q('spoken_audio')} WHERE ${q('message_id')} IS NULL AND ${q('byte_length')} IS NOT NULL) ranked WHERE kept > $1`,
      { bind: [maxBytes], type: QueryTypes.SELECT },
    );
    if (over.length === 0) return 0;
    return this.model.destroy({ where: { key: over.map((row) => row.k), message_id: null } });
  }

  private newClaim(): string {
    return `${this.nodeId.slice(0, 48)}#${randomBytes(6).toString('hex')}`;
  }
}
