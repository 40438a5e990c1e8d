/**
 * Who is asking, shared by REST and both realtime handshakes: the client address (through
 * trusted proxies, as express computes it) and whether a browser Origin may connect.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import { trustedProxies, type Config } from '../config';

export interface RequestPolicy {
  /** The client's address: X-Forwarded-For counts only when the peer is a proxy named in TRUST_PROXY. */
  clientAddress: (req: IncomingMessage) => string;
  /** The same rule as express's `trust proxy` setting takes it (so `req.ip` agrees). */
  trusts: (address: string, hop: number) => boolean;
  /**
   * Non-browser clients send no Origin and are allowed; browsers must be on CORS_ORIGINS, or
   * on this server's own origin (`host`: the request's Host header), like the /play page.
   */
  isOriginAllowed(origin: string | undefined, host?: string): boolean;
}

export function createRequestPolicy(config: Pick<Config, 'trustProxy' | 'corsOrigins'>): RequestPolicy {
  const trust = proxyAddr.compile(trustedProxies(config.trustProxy));
  const origins = config.corsOrigins;
  return {
    clientAddress: (req) => proxyAddr(req, trust),
    trusts: trust,
    isOriginAllowed: (origin, host) => origin === undefined || origins === '*' || origins.includes(origin) || (host !== undefined && sameHost(origin, host)),
  };
}

/**
 * A page this server served talking back to it: not a cross-site request, whatever
 * CORS_ORIGINS says (the scheme is left out: a TLS proxy in front changes it).
 */
function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
