/**
 * A real HTTP server on 127.0.0.1:0 standing in for Gemini or an OpenAI-compatible server:
 * it records every request and answers with whatever the test queued.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import bunyan from 'bunyan';
import type { Config } from '../../../config';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: any;
  /** Resolves when the connection of this request closes (e.g. the client aborted it). */
  closed: Promise<void>;
}

export type Responder = (res: http.ServerResponse) => void;

export const json =
  (status: number, body: unknown): Responder =>
  (res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

export const text =
  (status: number, body: string): Responder =>
  (res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
  };

/** Sends the headers and then nothing more, like a provider stuck mid-answer. */
export const hang: Responder = (res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"candidates": [');
};

export class FakeLlmServer {
  readonly received: ReceivedRequest[] = [];
  private queue: Responder[] = [];
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private waiters: Array<(r: ReceivedRequest) => void> = [];

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  /** Answers the next requests in order; the last responder keeps answering after that. */
  respondWith(...responders: Responder[]): void {
    this.received.length = 0;
    this.queue = responders;
  }

  /** The next request to arrive (or the one already received at that index). */
  request(index: number): Promise<ReceivedRequest> {
    if (this.received[index]) return Promise.resolve(this.received[index]);
    return new Promise((resolve) => {
      const waiter = (r: ReceivedRequest): void => {
        if (this.received[index] !== r) return;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
      const record: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, closed };
      this.received.push(record);
      for (const waiter of [...this.waiters]) waiter(record);
      const responder = this.queue.length > 1 ? this.queue.shift()! : this.queue[0];
      (responder ?? text(500, 'no responder queued'))(res);
    });
  }
}

export const quietLogger = (): bunyan => bunyan.createLogger({ name: 'test', level: 'fatal' });

export function spiritConfig(overrides: Partial<Config['spirit']> = {}): Config['spirit'] {
  return {
    provider: 'oracle',
    timeoutMs: 200,
    retries: 2,
    retryBaseMs: 5,
    breakerFailures: 1000,
    breakerCooldownMs: 30_000,
    oracleDelayMs: 0,
    owedAnswersIntervalMs: 1000,
    owedAnswerMaxAgeMs: 600_000,
    gemini: { apiKey: 'test-gemini-key', model: 'gemini-test', baseUrl: 'http://127.0.0.1:1/v1beta' },
    openai: { apiKey: 'test-openai-key', model: 'gpt-test', baseUrl: 'http://127.0.0.1:1/v1' },
    ...overrides,
  };
}

export interface WireFormat {
  /** A successful answer carrying `text`, in this provider's wire format. */
  ok: (text: string) => Responder;
  /** Well-formed JSON in this wire format that carries no usable text. */
  noText: Responder[];
}
