/** The stores on the database (PostgreSQL, or the embedded SQLite). */
import type { Database } from '../../db';
import type { MaintenanceStore, Stores } from '../ports';
import { SequelizeMaintenanceStore } from './maintenance';
import { SequelizeMessageStore } from './messages';
import { PgStatements } from './pgStatements';
import { SequelizeSessionStore } from './sessions';
import { SequelizeAudioStore } from './spokenAudio';
import { SequelizeUserStore } from './users';

/** `nodeId` names this node in the claims it takes on spoken audio. */
export function sequelizeStores(db: Database, nodeId: string): Stores {
  const statements = new PgStatements(db.sequelize);
  return {
    sessions: new SequelizeSessionStore(db.models, statements),
    messages: new SequelizeMessageStore(db.models, db.sequelize, statements),
    users: new SequelizeUserStore(db.models, statements),
    audio: new SequelizeAudioStore(db.models.SpokenAudio, nodeId),
  };
}

/** The housekeeping queries (idle sessions, retention) on the same database. */
export function sequelizeMaintenance(db: Database): MaintenanceStore {
  return new SequelizeMaintenanceStore(db.models, db.sequelize);
}
