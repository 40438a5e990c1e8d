/**
 * A realtime client in its own process, so a test can freeze it (SIGSTOP) the way a laptop
 * lid, a dead Wi-Fi or a stuck tab freezes a real one: its TCP connection stays open (the
 * kernel still acknowledges), but nothing reads it nor answers a ping.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildClient {
  pid: number;
  /** SIGSTOP: the client stops answering anything, its connection looks open. */
  freeze(): void;
  /** SIGKILL (a stopped process dies too). */
  kill(): void;
  /** Lines the client printed: `joined`, `refused CODE`, `closed CODE`. */
  lines: string[];
}

function script(transport: 'raw' | 'socket.io', url: string, join: Record<string, unknown>): string {
  if (transport === 'raw') {
    return `
      const WebSocket = require(${JSON.stringify(require.resolve('ws'))});
      const ws = new WebSocket(${JSON.stringify(url)});
      ws.on('open', () => ws.send(${JSON.stringify(JSON.stringify(join))}));
      ws.on('message', (raw) => { if (JSON.parse(raw.toString()).event === 'session_joined') console.log('joined'); });
      ws.on('close', (code) => console.log('closed ' + code));
      ws.on('error', () => undefined);`;
  }
  return `
    const { io } = require(${JSON.stringify(require.resolve('socket.io-client'))});
    const socket = io(${JSON.stringify(url)}, { auth: ${JSON.stringify(join)}, transports: ['websocket'], reconnection: false });
    socket.on('session_joined', () => console.log('joined'));
    socket.on('connect_error', (err) => console.log('refused ' + err.message));
    socket.on('disconnect', (reason) => console.log('closed ' + reason));`;
}

/** Starts a client process that joins `url` (raw: the /ws/{id} URL; Socket.IO: the server URL) and resolves once it joined. */
export async function startChildClient(transport: 'raw' | 'socket.io', url: string, join: Record<string, unknown>, timeoutMs = 10_000): Promise<ChildClient> {
  const child: ChildProcess = spawn(process.execPath, ['-e', script(transport, url, join)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const client: ChildClient = {
    pid: child.pid!,
    lines,
    freeze: () => child.kill('SIGSTOP'),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child client did not join within ${timeoutMs} ms: ${lines.join(' | ')}`)), timeoutMs);
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        lines.push(...text.split('\n').filter(Boolean));
        if (lines.includes('joined')) {
          clearTimeout(timer);
          resolve();
        } else if (lines.some((l) => l.startsWith('refused') || l.startsWith('closed'))) {
          clearTimeout(timer);
          reject(new Error(`child client refused: ${lines.join(' | ')}`));
        }
      });
      child.once('exit', () => reject(new Error(`child client exited: ${lines.join(' | ')}`)));
    });
  } catch (err) {
    client.kill();
    throw err;
  }
  return client;
}
