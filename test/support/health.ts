/** Helpers that ask nodes about themselves, for tests that break and heal a cluster. */
import http from 'node:http';
import { http as request } from './clients';

/** Polls /health until `predicate` holds; resolves with the body plus `httpStatus`. */
export async function waitForHealth(url: string, predicate: (body: any, httpStatus: number) => boolean, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await request(url, 'GET', '/health');
    if (predicate(reply.body, reply.status)) return { httpStatus: reply.status, ...reply.body };
    if (Date.now() > deadline) throw new Error(`health never matched: ${reply.status} ${reply.text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Which node answers GET /health for a client at `localAddress` (through nginx: its hash). */
export function nodeServing(url: string, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) =>
    http
      .get(`${url}/health`, { localAddress }, (res) => {
        res.resume();
        resolve(String(res.headers['x-seance-node']));
      })
      .on('error', reject),
  );
}
