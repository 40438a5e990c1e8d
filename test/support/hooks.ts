/**
 * Root hooks: one throwaway PostgreSQL for the whole run (started on first use, stopped at
 * the end), so every suite talks to a real database without paying initdb each time; and
 * the Docker images, built in the background from the start when the run has suites that
 * need them, the engine stopped at the end if the run started it.
 */
import { startPostgres, type PostgresHandle } from '../../harness/postgres';
import { prepareImages, stopDockerEngine } from './docker';

/** The suites that need the Docker images (built in the background from the start of the run). */
const DOCKER_SUITES = /test\/ops\/(image|topology)\.test\.ts$/;

let postgres: Promise<PostgresHandle> | null = null;

/** The run's shared PostgreSQL server. */
export function sharedPostgres(): Promise<PostgresHandle> {
  postgres ??= startPostgres();
  return postgres;
}

export const mochaHooks = {
  beforeAll(this: Mocha.Context) {
    const files = this.test?.parent?.suites.map((suite) => suite.file ?? '') ?? [];
    if (files.some((file) => DOCKER_SUITES.test(file))) prepareImages();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    if (postgres) await (await postgres).destroy();
    await stopDockerEngine();
  },
};
