import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize';

/**
 * Speech made once for the whole cluster. `content_key` is a hash of the provider, its
 * settings, the voice and the text; `key` is that too for audio made for any text
 * (`tts/generate`), kept least recently used first out (`used_at`), and for an answer's audio a
 * key of its own, the row going with its message (`message_id`). A row is first a claim
 * (`data` null, the node that makes it in `claimed_by`), then the audio itself.
 */
export class SpokenAudio extends Model<InferAttributes<SpokenAudio>, InferCreationAttributes<SpokenAudio>> {
  declare key: string;
  declare claimed_by: string;
  declare claimed_at: Date;
  declare data: Buffer | null;
  declare content_type: string | null;
  declare byte_length: number | null;
  /** A hash of `data`: the ETag. */
  declare digest: string | null;
  /** Who actually spoke: the configured provider, or the built-in voice after a failure. */
  declare provider: string | null;
  declare voice: string;
  declare fallback: CreationOptional<boolean>;
  declare created_at: CreationOptional<Date>;
  declare content_key: string | null;
  /** The spirit's answer this audio speaks (deleted with it); null for any other text. */
  declare message_id: number | null;
  /** When it was last served: the least recently used goes first. */
  declare used_at: CreationOptional<Date>;

  static initModel(sequelize: Sequelize): typeof SpokenAudio {
    SpokenAudio.init(
      {
        key: { type: DataTypes.STRING(64), primaryKey: true },
        claimed_by: { type: DataTypes.STRING(64), allowNull: false },
        claimed_at: { type: DataTypes.DATE, allowNull: false },
        data: { type: DataTypes.BLOB, allowNull: true },
        content_type: { type: DataTypes.STRING(32), allowNull: true },
        byte_length: { type: DataTypes.INTEGER, allowNull: true },
        digest: { type: DataTypes.STRING(64), allowNull: true },
        provider: { type: DataTypes.STRING(16), allowNull: true },
        voice: { type: DataTypes.STRING(100), allowNull: false },
        fallback: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
        created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
        content_key: { type: DataTypes.STRING(64), allowNull: true },
        message_id: { type: DataTypes.INTEGER, allowNull: true },
        used_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      },
      { sequelize, tableName: 'spoken_audio', timestamps: false },
    );
    return SpokenAudio;
  }
}
