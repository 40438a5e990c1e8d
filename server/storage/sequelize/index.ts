/** The stores on the database (PostgreSQL, or the embedded SQLite). */
import type { Database } from '../../db';
import type { Stores } from '../ports';
import { SequelizeMessageStore } from './messages';
import { SequelizeSessionStore } from './sessions';
import { SequelizeUserStore } from './users';

export function sequelizeStores(db: Database): Stores {
  return {
    sessions: new SequelizeSessionStore(db.models),
    messages: new SequelizeMessageStore(db.models, db.sequelize),
    users: new SequelizeUserStore(db.models),
  };
}
