/**
 * Root hooks: one throwaway PostgreSQL for the whole run (started on first use, stopped at
 * the end), so every suite talks to a real database without paying initdb each time.
 */
import { startPostgres, type PostgresHandle } from '../../harness/postgres';

let postgres: Promise<PostgresHandle> | null = null;

/** The run's shared PostgreSQL server. */
export function sharedPostgres(): Promise<PostgresHandle> {
  postgres ??= startPostgres();
  return postgres;
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    if (postgres) await (await postgres).destroy();
  },
};
