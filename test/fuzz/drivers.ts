/**
 * Low-level clients the fuzz suite needs beyond test/support/clients.ts: an HTTP client
 * that sends paths and bodies exactly as given (fetch would normalize them), a bare
 * Engine.IO/Socket.IO speaker that can send malformed packets, a raw-socket HTTP sender,
 * and a bounded worker pool. Every wait has a timeout.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

export interface RawRequest {
  method: string;
  /** Sent as is; characters Node refuses in a path are percent-encoded first. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** Node only refuses characters outside U+0021..U+00FF in a request path. */
export function sendablePath(path: string): string {
  return path.replace(/[^\u0021-\u00ff]/gu, (ch) => [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

export class HttpFuzzClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly port: number) {}

  request(req: RawRequest, timeoutMs = 10_000): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
      const r = http.request({ host: '127.0.0.1', port: this.port, method: req.method, path: sendablePath(req.path), headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: any;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      });
      const timer = setTimeout(() => r.destroy(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      r.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      r.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Writes bytes to a fresh TCP connection and reads until the server closes it or has sent
 * one response head; for requests too broken for any HTTP client library.
 */
export function rawHttp(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<{ statusLine: string; text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ statusLine: text.split('\r\n')[0] ?? '', text, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, head));
      if (!length || text.length >= head + 4 + Number(length[1])) done(true);
    });
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
  });
}

/** Socket.IO v5 protocol over Engine.IO v4, by hand: packets are plain strings we write. */
export class EioClient {
  readonly packets: string[] = [];
  readonly closed: Promise<{ code: number }>;
  private waiters: Array<{ match: (p: string) => boolean; resolve: (p: string | null) => void }> = [];
  private isClosed = false;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        this.isClosed = true;
        for (const w of this.waiters) w.resolve(null);
        this.waiters = [];
        resolve({ code });
      }),
    );
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      const packet = isBinary ? '<binary>' : (data as Buffer).toString();
      if (packet === '2') ws.send('3');
      this.packets.push(packet);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(packet)) return true;
        w.resolve(packet);
        return false;
      });
    });
  }

  static async open(wsUrl: string, timeoutMs = 5000): Promise<EioClient> {
    const ws = new WebSocket(`${wsUrl}/socket.io/?EIO=4&transport=websocket`);
    const client = new EioClient(ws);
    const open = await client.next((p) => p.startsWith('0{'), timeoutMs);
    if (!open) throw new Error('no Engine.IO open packet');
    return client;
  }

  get isOpen(): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  /** The first packet (already here or still to come) matching, or null on close or timeout. */
  next(match: (p: string) => boolean, timeoutMs = 5000, from = 0): Promise<string | null> {
    const found = this.packets.slice(from).find(match);
    if (found !== undefined) return Promise.resolve(found);
    if (this.isClosed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (p: string | null) => {
          clearTimeout(timer);
          resolve(p);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(null);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  send(packet: string | Buffer, opts: { binary?: boolean } = {}): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(packet, opts);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Parses `42[...]` (optionally with an ack id) into [event, ...args]; null for anything else. */
export function parseEioEvent(packet: string): unknown[] | null {
  const m = /^42\d*(\[.*)$/s.exec(packet);
  if (!m) return null;
  try {
    const args = JSON.parse(m[1]);
    return Array.isArray(args) ? args : null;
  } catch {
    return null;
  }
}

/** Runs `work` over `items` with at most `concurrency` at a time. */
export async function pool<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < items.length) {
      const i = nextIndex++;
      await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A short, printable rendering of any input, for failure reports. */
export function describe(value: unknown, max = 300): string {
  let text: string;
  if (Buffer.isBuffer(value)) text = `<Buffer ${value.length} bytes ${value.subarray(0, 24).toString('hex')}${value.length > 24 ? '…' : ''}>`;
  else if (typeof value === 'string') text = JSON.stringify(value);
  else {
    try {
      text =
        JSON.stringify(value, function (this: any, key: string, v: unknown) {
          const original = this[key];
          return Buffer.isBuffer(original) || ArrayBuffer.isView(original) || original instanceof ArrayBuffer ? `<binary ${original.byteLength} bytes>` : v;
        }) ?? String(value);
    } catch (err) {
      text = `<unprintable: ${(err as Error).message}>`;
    }
  }
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}
