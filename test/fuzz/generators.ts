/**
 * Hostile input for the fuzz suite, from a small seeded PRNG so that any failure replays
 * exactly with FUZZ_SEED=<seed>. Generators return plain data (strings, JSON-able values,
 * JSON texts); what the server should answer is decided separately, in reference.ts.
 */
import { createHmac, randomInt } from 'node:crypto';

/** mulberry32: tiny, fast and good enough to pick inputs. */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  /** Runs one of the weighted alternatives. */
  choose<T>(alternatives: ReadonlyArray<readonly [number, () => T]>): T {
    const total = alternatives.reduce((sum, [w]) => sum + w, 0);
    let roll = this.next() * total;
    for (const [weight, make] of alternatives) {
      roll -= weight;
      if (roll < 0) return make();
    }
    return alternatives[alternatives.length - 1][1]();
  }

  /** An independent stream per surface, so adding cases to one surface leaves the others alone. */
  fork(label: string): Rng {
    let h = 0x811c9dc5 ^ this.seed;
    for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
    return new Rng(h >>> 0);
  }
}

/** FUZZ_SEED when given (to replay a failure), a fresh random seed otherwise. */
export function fuzzSeed(): number {
  const given = process.env.FUZZ_SEED;
  if (given && /^\d+$/.test(given)) return Number(given) >>> 0;
  return randomInt(1, 2 ** 31);
}

/** Multiplies every case count (FUZZ_SCALE=0.2 for a quick local run, 5 for a long soak). */
export function fuzzScale(): number {
  const given = Number(process.env.FUZZ_SCALE);
  return Number.isFinite(given) && given > 0 ? given : 1;
}

/** Keys that have bitten JavaScript servers through object merging and lookups. */
export const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

/** Strings that tend to break parsers, databases, loggers and length checks. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '   \t\n  ',
  '\u0000',
  'a\u0000b',
  '\u0000'.repeat(8),
  'ghost\u0000',
  '\uD800',
  '\uDFFF',
  'x\uD83Dy',
  'lone \uDC7B low',
  '\uD83D\uDC7B',
  '𝔖é𝔞𝔫𝔠𝔢',
  'e\u0301\u0301\u0301',
  '\u200B',
  '\u200B\u200C\u200D',
  '\uFEFF',
  '\uFEFFhello\uFEFF',
  '\u00A0',
  '\u3000\u2003\u00A0',
  '\u2028\u2029',
  '\u202Eevil\u202C',
  '\uFFFD',
  '\uFFFE\uFFFF',
  'İı ß ﬃ ǅ',
  '\u0007\u001B[31mred\u001B[0m',
  '\r\n\r\nX-Injected: 1',
  '\\',
  '"',
  "'",
  '`',
  '\\u0000',
  '\\ud800',
  '%00',
  '%',
  '%zz',
  '%E0%A4%A',
  '%2e%2e%2f%2e%2e%2f',
  '../',
  '../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '/etc/passwd\u0000.png',
  'file:///etc/passwd',
  "'; DROP TABLE messages; --",
  "' OR '1'='1",
  '1 OR 1=1',
  '$1',
  "'); SELECT pg_sleep(5); --",
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '{{7*7}}',
  '${7*7}',
  '#{7*7}',
  '%s%s%s%n%x',
  ...POLLUTION_KEYS,
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  'true',
  '[]',
  '{}',
  '[object Object]',
  'CON',
  'nul',
  '😀'.repeat(26),
  '𒐫'.repeat(250),
  '😀'.repeat(251),
  'a'.repeat(50),
  'a'.repeat(51),
  'a'.repeat(100),
  'a'.repeat(101),
  'a'.repeat(500),
  'a'.repeat(501),
  ' '.repeat(600) + 'a' + ' '.repeat(600),
  'Z̷̢̛̪̝̗̩̓̈́̓a̶̧̛̖̼l̸̡̘̓g̸̱̈́o̸̙͝',
  'ﷺ'.repeat(40),
  '\u{10FFFF}\u{E0001}',
];

const WHITESPACE = [' ', '\t', '\n', '\r', '\u00A0', '\u3000', '\u2003', '\u2028', '\uFEFF', '\v', '\f'];

function randomChar(rng: Rng): string {
  return rng.choose<string>([
    [40, () => String.fromCharCode(rng.int(0x20, 0x7e))],
    [6, () => String.fromCharCode(rng.int(0, 0x1f))],
    [6, () => String.fromCharCode(rng.int(0x80, 0xff))],
    [8, () => String.fromCharCode(rng.int(0x4e00, 0x9fff))],
    [8, () => String.fromCodePoint(rng.int(0x1f300, 0x1f6ff))],
    [4, () => String.fromCodePoint(rng.int(0x10000, 0x10ffff))],
    [5, () => String.fromCharCode(rng.int(0xd800, 0xdfff))],
    [6, () => rng.pick(WHITESPACE)],
    [3, () => String.fromCharCode(rng.int(0x300, 0x36f))],
    [2, () => String.fromCharCode(rng.int(0xfff0, 0xffff))],
  ]);
}

export function randomString(rng: Rng, maxLength: number): string {
  const length = rng.int(0, maxLength);
  let out = '';
  while (out.length < length) out += randomChar(rng);
  return out;
}

/** A long string of `length` code units, built from a repeated unit (cheap to make). */
export function longString(rng: Rng, length: number): string {
  const unit = rng.pick(['a', ' ', '😀', 'é', '\u0000', '\uD800', 'ab ', '\u200B', 'x\n']);
  let out = unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
  // A trailing half of a surrogate pair is itself a lone surrogate: also a fine input.
  if (rng.bool(0.3)) out = ' '.repeat(rng.int(1, 5)) + out;
  return out;
}

/** Any hostile string; `maxHuge` caps the huge ones (16 KiB frames, 16 KiB bodies...). */
export function junkString(rng: Rng, maxHuge = 20_000): string {
  return rng.choose<string>([
    [30, () => rng.pick(EDGE_STRINGS)],
    [30, () => randomString(rng, 40)],
    [12, () => rng.pick(EDGE_STRINGS) + randomString(rng, 10) + rng.pick(EDGE_STRINGS)],
    [8, () => rng.pick(WHITESPACE).repeat(rng.int(1, 20))],
    [10, () => longString(rng, Math.min(maxHuge, rng.pick([499, 500, 501, 502, 1000, 4096, 16_384, 20_000, 100_000])))],
    [5, () => String(rng.pick([0, -1, 1e21, 2 ** 53 + 1, 0.1]))],
    [5, () => randomString(rng, 3)],
  ]);
}

export const NUMBERS = [0, -0, 1, -1, 2, 6, 12, 13, 1.5, 2.0000001, 1e308, -1e308, 5e-324, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 100, 1e21];

/** Sets a key as an own enumerable property, even `__proto__`, so it survives JSON.stringify. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Nested arrays `depth` levels deep, built without recursion. */
export function deepArray(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

export function deepObject(depth: number, key = 'a', leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) {
    const o: Record<string, unknown> = {};
    setOwn(o, key, v);
    v = o;
  }
  return v;
}

export const deepArrayText = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
export const deepObjectText = (depth: number, key = 'a'): string => `{"${key}":`.repeat(depth) + 'null' + '}'.repeat(depth);

/** A payload meant to poison Object.prototype if the server merges it carelessly. */
export function pollutionPayload(rng: Rng): Record<string, unknown> {
  const poison = { fuzz_polluted: true, name: 'polluted', token: 'polluted', max_users: 99, message: 'polluted', typ: 'creator', isAdmin: true };
  const o: Record<string, unknown> = {};
  setOwn(o, rng.pick(['__proto__', 'constructor', 'prototype']), rng.bool() ? poison : { prototype: poison });
  // JSON.parse makes "__proto__" an own key at every level, as a server's parser would.
  if (rng.bool()) setOwn(o, '__proto__', JSON.parse(`{"__proto__": ${JSON.stringify(poison)}}`));
  return o;
}

export const FIELD_NAMES = ['name', 'max_users', 'message', 'user_id', 'user_name', 'token', 'session_id', 'event', 'data', 'limit', 'before', 'id', 'is_spirit'];

/** A JSON-able junk value; `depth` bounds the recursion, deep nesting comes from deepArray/deepObject. */
export function junkValue(rng: Rng, depth = 0, maxHuge = 20_000): unknown {
  const leaves: Array<readonly [number, () => unknown]> = [
    [8, () => null],
    [4, () => rng.bool()],
    [10, () => rng.pick(NUMBERS)],
    [30, () => junkString(rng, maxHuge)],
  ];
  if (depth >= 3) return rng.choose(leaves);
  return rng.choose<unknown>([
    ...leaves,
    [10, () => Array.from({ length: rng.int(0, 4) }, () => junkValue(rng, depth + 1, maxHuge))],
    [14, () => junkObject(rng, depth + 1, maxHuge)],
    [3, () => (rng.bool() ? deepArray(rng.int(50, 2000)) : deepObject(rng.int(50, 1500)))],
    [3, () => pollutionPayload(rng)],
  ]);
}

export function junkObject(rng: Rng, depth = 0, maxHuge = 20_000): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const count = rng.int(0, 5);
  for (let i = 0; i < count; i++) {
    const key = rng.choose<string>([
      [30, () => rng.pick(FIELD_NAMES)],
      [15, () => rng.pick(POLLUTION_KEYS)],
      [20, () => junkString(rng, 200)],
    ]);
    setOwn(o, key, junkValue(rng, depth + 1, maxHuge));
  }
  return o;
}

/** Cuts a JSON text somewhere inside, keeping at least one character. */
export function truncate(rng: Rng, text: string): string {
  if (text.length <= 1) return text;
  return text.slice(0, rng.int(1, text.length - 1));
}

/** Text that is not quite the JSON it pretends to be. */
export function malformedJsonText(rng: Rng, like: () => unknown): string {
  const base = JSON.stringify(like()) ?? 'null';
  return rng.choose<string>([
    [30, () => truncate(rng, base)],
    [8, () => base + rng.pick([',', '}', ']', '"', 'x', '\u0000', ' garbage'])],
    [6, () => base.replace(/"/g, "'")],
    [6, () => base.replace(/:/, '')],
    [5, () => `{"name": "a", "name": ${base}`],
    [5, () => `{${rng.pick(['name', 'message', '__proto__'])}: 1}`],
    [5, () => '{"a": NaN, "b": Infinity, "c": undefined}'],
    [5, () => '{"a": 01, "b": .5, "c": +1, "d": 0x10}'],
    [4, () => '{"a": "\\x41", "b": "\\u12"}'],
    [4, () => '["unterminated'],
    [4, () => '/* comment */ {"name": "a"}'],
    [4, () => '\uFEFF{"name": "a"}'],
    [3, () => '{"a":1}{"b":2}'],
    [3, () => '{"a":"' + '\\'.repeat(rng.int(1, 9)) + '"}'],
    [3, () => ''],
    [3, () => rng.pick(['null', 'true', '0', '"text"', '[]', '-', '1e999', '"\\ud800"'])],
    [3, () => deepArrayText(rng.int(500, 7000))],
    [3, () => deepObjectText(rng.int(300, 3000))],
    [3, () => '['.repeat(rng.int(100, 4000))],
    [2, () => randomString(rng, 60)],
  ]);
}

// --- JWTs, forged or bent -------------------------------------------------------------

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

export function signJwt(payload: Record<string, unknown>, secret: string, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256', header: Record<string, unknown> = {}): string {
  const head = b64url(JSON.stringify({ alg, typ: 'JWT', ...header }));
  const body = b64url(JSON.stringify(payload));
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  return `${head}.${body}.${createHmac(hash, secret).update(`${head}.${body}`).digest('base64url')}`;
}

export interface TokenKit {
  secret: string;
  /** Guest tokens the server issued (valid for joins, 403 on DELETE). */
  guest: string[];
  /** Creator tokens of sessions we never DELETE with them (403 elsewhere). */
  creatorOfOthers: string[];
}

/** A token the server must refuse: forged, bent, expired, or not a token at all. */
export function badToken(rng: Rng, kit: TokenKit): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { typ: 'access', sub: 'fuzz-forged', name: 'Forged', iat: now, exp: now + 600 };
  const real = rng.pick(kit.guest);
  return rng.choose<string>([
    [6, () => `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.`],
    [3, () => `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ ...claims, typ: 'creator', sid: 'x' }))}`],
    [6, () => signJwt(claims, 'not-the-secret-' + rng.int(0, 1e6))],
    [4, () => signJwt(claims, kit.secret, 'HS512')],
    [4, () => signJwt(claims, kit.secret, 'HS384')],
    [5, () => signJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, kit.secret)],
    [3, () => signJwt({ ...claims, nbf: now + 3600 }, kit.secret, 'HS256', { alg: 'HS256' }).replace(/\.[^.]*$/, '.AAAA')],
    [6, () => real.slice(0, -rng.int(1, 10))],
    [6, () => real.slice(0, -2) + (real.endsWith('AA') ? 'BB' : 'AA')],
    [3, () => real.split('.').slice(0, 2).join('.')],
    [3, () => real + '.' + real.split('.')[2]],
    [3, () => real.replace(/^[^.]+/, b64url('{"alg":"HS256","typ":"JWT","kid":"../../../dev/null"}'))],
    [3, () => `${real.split('.')[0]}.${b64url(JSON.stringify({ ...claims, typ: 'creator', sid: '00000000-0000-4000-8000-000000000000' }))}.${real.split('.')[2]}`],
    [4, () => 'x'.repeat(rng.pick([1, 4096, 4097, 10_000]))],
    [10, () => junkString(rng, 5000)],
    [3, () => 'eyJ' + randomString(rng, 200)],
    [2, () => '..'],
  ]);
}

/** An Authorization header value, mostly broken. `good` may be a real token (403/404 cases). */
export function authorizationHeader(rng: Rng, kit: TokenKit): string | undefined {
  return rng.choose<string | undefined>([
    [8, () => undefined],
    [20, () => `Bearer ${badToken(rng, kit)}`],
    [5, () => badToken(rng, kit)],
    [4, () => 'Bearer'],
    [3, () => 'Bearer '],
    [3, () => `Basic ${b64url('admin:admin')}`],
    [3, () => `Bearer  ${rng.pick(kit.guest)}`],
    [3, () => `Bearer ${rng.pick(kit.guest)} trailing`],
    [6, () => `Bearer ${rng.pick(kit.guest)}`],
    [6, () => `Bearer ${rng.pick(kit.creatorOfOthers)}`],
    [3, () => `bearer ${rng.pick(kit.guest)}`],
    [4, () => `Bearer ${'A'.repeat(rng.pick([5000, 12_000]))}`],
    [6, () => junkString(rng, 3000)],
  ]);
}

/** Header values may only carry tab, visible ASCII and 0x80-0xFF; anything else becomes '?'. */
export function headerSafe(value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
}

/** Percent-encodes every byte of the UTF-8 form except unreserved characters (lone surrogates become U+FFFD). */
export function encodeSegment(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A random version-4 UUID drawn from the seeded stream. */
export function seededUuid(rng: Rng): string {
  const hex = () => rng.int(0, 15).toString(16);
  const run = (n: number) => Array.from({ length: n }, hex).join('');
  return `${run(8)}-${run(4)}-4${run(3)}-${rng.pick(['8', '9', 'a', 'b'])}${run(3)}-${run(12)}`;
}
