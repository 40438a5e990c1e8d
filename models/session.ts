import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize';

/** A séance room. Ending a session flips `is_active`; rows are never deleted by the API. */
export class Session extends Model<InferAttributes<Session>, InferCreationAttributes<Session>> {
  declare id: CreationOptional<string>;
  declare name: string;
  declare max_users: CreationOptional<number>;
  declare is_active: CreationOptional<boolean>;
  declare created_at: CreationOptional<Date>;
  declare ended_at: Date | null;
  /** The seq of the session's latest message (0 before the first). */
  declare last_seq: CreationOptional<number>;

  static initModel(sequelize: Sequelize): typeof Session {
    Session.init(
      {
        id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
        name: { type: DataTypes.STRING(100), allowNull: false },
        max_users: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 6 },
        is_active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
        created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
        ended_at: { type: DataTypes.DATE, allowNull: true, defaultValue: null },
        last_seq: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      },
      { sequelize, tableName: 'sessions', timestamps: false },
    );
    return Session;
  }
}
