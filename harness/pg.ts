/**
 * A narrow typed view of the `pg` driver (installed for Sequelize; the project carries no
 * @types/pg), enough for the harness and its tests to talk to PostgreSQL directly.
 */
export interface PgClient {
  connect(): Promise<void>;
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): void;
}

interface PgModule {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pg = require('pg') as PgModule;

export function pgClient(url: string, connectionTimeoutMillis = 5_000): PgClient {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis });
  // An idle client whose server goes away emits 'error'; without a listener that would crash the run.
  client.on('error', () => undefined);
  return client;
}

/** Runs one query on a short-lived connection. */
export async function pgQuery<Row = Record<string, unknown>>(url: string, sql: string): Promise<Row[]> {
  const client = pgClient(url);
  try {
    await client.connect();
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}
