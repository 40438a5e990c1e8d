/**
 * Root hooks: one throwaway PostgreSQL for the whole run (started on first use, stopped at
 * the end), so every suite talks to a real database without paying initdb each time; and
 * the Docker engine, if a suite started one.
 */
import { startPostgres, type PostgresHandle } from '../../harness/postgres';
import { stopDockerEngine } from './docker';

let postgres: Promise<PostgresHandle> | null = null;

/** The run's shared PostgreSQL server. */
export function sharedPostgres(): Promise<PostgresHandle> {
  postgres ??= startPostgres();
  return postgres;
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    if (postgres) await (await postgres).destroy();
    await stopDockerEngine();
  },
};
