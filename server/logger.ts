/**
 * One bunyan root logger. JSON lines in production (and whenever stdout is not a terminal
 * in tests); a compact readable line in development. Callers make child loggers that carry
 * `node_id`, `req_id`, `session_id`, `user_id`.
 */
import bunyan from 'bunyan';
import { Writable } from 'node:stream';
import type { Config } from '../config';

export type Logger = bunyan;

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['name', 'hostname', 'pid', 'level', 'msg', 'time', 'v']);

/** Readable one-line records for a developer's terminal: `10:00:00.000 INFO  msg key=value`. */
function readableStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    objectMode: true,
    write(record: Record<string, unknown>, _enc, done) {
      const time = record.time instanceof Date ? record.time.toISOString().slice(11, 23) : '';
      const level = (LEVEL_NAMES[record.level as number] ?? String(record.level)).padEnd(5);
      const fields = Object.entries(record)
        .filter(([k]) => !OMIT.has(k))
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${time} ${level} ${record.msg as string}${fields ? ` ${fields}` : ''}\n`);
      done();
    },
  });
}

export function createLogger(config: Pick<Config, 'nodeEnv' | 'logLevel' | 'nodeId'>): Logger {
  const readable = config.nodeEnv === 'development';
  return bunyan.createLogger({
    name: 'seance',
    level: config.logLevel,
    node_id: config.nodeId,
    serializers: { err: bunyan.stdSerializers.err },
    streams: [readable ? { type: 'raw', stream: readableStream(process.stdout) } : { stream: process.stdout }],
  });
}
