/**
 * The secret that signs tokens. No secret anyone can read signs one: either JWT_SECRET, or,
 * on a single node with the embedded database (config refuses a cluster without JWT_SECRET),
 * a random secret made on first start and kept beside the SQLite file, readable by its owner
 * only, so tokens survive a restart exactly as long as the data they name.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';

const SECRET_BYTES = 48;
const OWNER_ONLY = 0o600;

export function signingSecret(auth: Pick<Config['auth'], 'jwtSecret' | 'jwtSecretFile'>): string {
  if (auth.jwtSecret) return auth.jwtSecret;
  // An in-memory database dies with the process: so may its secret.
  if (!auth.jwtSecretFile) return makeSecret();
  return readSecret(auth.jwtSecretFile) ?? createSecret(auth.jwtSecretFile);
}

function makeSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

function readSecret(file: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the kept JWT secret ${file}: ${(err as Error).message}`);
  }
  if (text.length < 32) throw new Error(`the kept JWT secret ${file} is damaged (shorter than 32 characters): remove it to make a new one, or set JWT_SECRET`);
  // Someone loosened its mode: only the owner may read what signs every token.
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, OWNER_ONLY);
  return text;
}

function createSecret(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const secret = makeSecret();
  const draft = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(draft, `${secret}\n`, { mode: OWNER_ONLY });
    // A link is atomic and refuses to replace: two processes starting at once on one data
    // folder both end up with the first one's secret, never with half a file.
    fs.linkSync(draft, file);
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readSecret(file)!;
    throw new Error(`cannot keep a JWT secret in ${file}: ${(err as Error).message} (set JWT_SECRET instead)`);
  } finally {
    fs.rmSync(draft, { force: true });
  }
}
