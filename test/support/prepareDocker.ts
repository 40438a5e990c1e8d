/**
 * `.ci/run` builds the Docker suites' images before `npm test`: the cold build (debootstrap,
 * npm ci with sqlite3 compiled, Debian's PostgreSQL, Redis and nginx) takes minutes of both
 * cores, which would otherwise run beside the timing-sensitive suites. The images stay in
 * the engine's data root (.ci/cache/docker), so the suites find them built. Where no Docker
 * engine can run this says so and exits 0: the suites then skip themselves with the reason.
 */
import { DockerUnavailable } from '../../harness/docker';
import { appImage, servicesImage, stopDockerEngine } from './docker';

async function main(): Promise<number> {
  const started = Date.now();
  try {
    const [app, services] = await Promise.all([appImage(), servicesImage()]);
    process.stdout.write(`built ${app} and ${services} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    return 0;
  } catch (err) {
    if (err instanceof DockerUnavailable) {
      process.stdout.write(`no Docker engine here (${err.message}): the image and topology suites will skip\n`);
      return 0;
    }
    process.stderr.write(`building the Docker suites' images failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await stopDockerEngine();
  }
}

void main().then((code) => (process.exitCode = code));
