/**
 * The realtime protocol's AsyncAPI 3 document (docs/asyncapi.yaml), read once at start and
 * served as JSON at /asyncapi.json beside /openapi.json.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

export function loadAsyncApiDocument(rootDir: string): unknown {
  const file = path.join(rootDir, 'docs', 'asyncapi.yaml');
  try {
    return parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`Cannot read the AsyncAPI document ${file}: ${(err as Error).message}`);
  }
}
