import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from 'sequelize';

/**
 * A chat message or a spirit answer. `seq` is its place in its session (1, 2, 3, …, given by
 * the database as the row is inserted) and orders the session's history; the id is unique in
 * the deployment. The column is `text` (the design's name); the wire calls it `message`.
 */
export class Message extends Model<InferAttributes<Message>, InferCreationAttributes<Message>> {
  declare id: CreationOptional<number>;
  declare session_id: string;
  declare seq: CreationOptional<number>;
  declare user_id: string | null;
  declare user_name: string | null;
  declare text: string;
  declare is_spirit: CreationOptional<boolean>;
  declare in_reply_to: number | null;
  declare timestamp: CreationOptional<Date>;
  /** The node that owes this question its answer (null: nothing owed). */
  declare answer_owner: CreationOptional<string | null>;

  static initModel(sequelize: Sequelize): typeof Message {
    Message.init(
      {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        session_id: { type: DataTypes.UUID, allowNull: false },
        seq: { type: DataTypes.INTEGER, allowNull: false },
        user_id: { type: DataTypes.STRING(64), allowNull: true },
        user_name: { type: DataTypes.STRING(50), allowNull: true },
        text: { type: DataTypes.TEXT, allowNull: false },
        is_spirit: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
        in_reply_to: { type: DataTypes.INTEGER, allowNull: true },
        timestamp: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
        answer_owner: { type: DataTypes.STRING(128), allowNull: true },
      },
      { sequelize, tableName: 'messages', timestamps: false },
    );
    return Message;
  }
}
