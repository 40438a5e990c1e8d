/**
 * Preloaded into a node under profile (`NODE_OPTIONS=--require .../profiler-preload.js`,
 * since Node refuses --cpu-prof in NODE_OPTIONS): the first SIGUSR2 starts the V8 sampling
 * profiler, the next one stops it and writes `<dir>/<pid>.cpuprofile`. So the profile holds
 * exactly the measured window, without start-up, warm-up or shutdown.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 1000) }, () => session.post('Profiler.start')));
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (err) {
        process.stderr.write(`profiler: ${err.message}\n`);
        return;
      }
      const file = path.join(dir, `${process.pid}.cpuprofile`);
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(result.profile));
      fs.renameSync(`${file}.tmp`, file);
    });
  });
}
