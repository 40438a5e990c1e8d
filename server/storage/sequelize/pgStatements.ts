/**
 * Named statements straight on a pg client from Sequelize's pool (PostgreSQL only): each is
 * parsed and planned once per connection, and a call costs none of Sequelize's query
 * building, option cloning and model instances. Used where a statement runs for every
 * message or every join; everything else goes through the models.
 */
import type { Sequelize } from 'sequelize';
import { isConnectionSqlState } from '../../errors';

/** The pg client Sequelize pools, as far as these statements use it. */
interface PgClient {
  query<R>(statement: { name: string; text: string; values: unknown[] }): Promise<{ rows: R[] }>;
  _invalid?: boolean;
}

/** An error PostgreSQL raised for the statement (a SQLSTATE outside connection loss and shutdown): the connection is fine. */
function isStatementError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !isConnectionSqlState(code);
}

export class PgStatements {
  /** False on SQLite: callers use the models there. */
  readonly enabled: boolean;

  constructor(private readonly sequelize: Sequelize) {
    this.enabled = sequelize.getDialect() === 'postgres';
  }

  async run<R>(name: string, text: string, values: unknown[]): Promise<R[]> {
    const pool = this.sequelize.connectionManager;
    const client = (await pool.getConnection({ type: 'write' })) as unknown as PgClient;
    try {
      return (await client.query<R>({ name, text, values })).rows;
    } catch (err) {
      // Sequelize's own mark for a broken connection: the pool replaces it instead of lending it again.
      if (!isStatementError(err)) client._invalid = true;
      throw err;
    } finally {
      pool.releaseConnection(client);
    }
  }
}
