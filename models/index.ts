/**
 * Registers the models on one Sequelize instance. The schema itself is owned by
 * migrations/: nothing here ever calls sync().
 */
import type { Sequelize } from 'sequelize';
import { Message } from './message';
import { Session } from './session';
import { SpokenAudio } from './spokenAudio';
import { User } from './user';

export { Message, Session, SpokenAudio, User };

export interface Models {
  Session: typeof Session;
  Message: typeof Message;
  User: typeof User;
  SpokenAudio: typeof SpokenAudio;
}

export function initModels(sequelize: Sequelize): Models {
  Session.initModel(sequelize);
  Message.initModel(sequelize);
  User.initModel(sequelize);
  SpokenAudio.initModel(sequelize);
  Session.hasMany(Message, { foreignKey: 'session_id', as: 'messages', onDelete: 'CASCADE' });
  Message.belongsTo(Session, { foreignKey: 'session_id', as: 'session' });
  return { Session, Message, User, SpokenAudio };
}
