/**
 * Who is asking, shared by REST and both realtime handshakes: the client address (through
 * trusted proxies, as express computes it) and whether a browser Origin may connect.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config';

export interface RequestPolicy {
  clientAddress(req: IncomingMessage): string;
  /** Non-browser clients send no Origin and are allowed; browsers must be on CORS_ORIGINS. */
  isOriginAllowed(origin: string | undefined): boolean;
}

export function createRequestPolicy(config: Pick<Config, 'trustProxy' | 'corsOrigins'>): RequestPolicy {
  const trust = proxyAddr.compile(
    config.trustProxy
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const origins = config.corsOrigins;
  return {
    clientAddress: (req) => proxyAddr(req, trust),
    isOriginAllowed: (origin) => origin === undefined || origins === '*' || origins.includes(origin),
  };
}
