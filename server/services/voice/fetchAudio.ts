/**
 * The wire part every paid voice shares: POST JSON, read at most `maxBytes` of the reply,
 * and accept it only when the bytes are audio (MP3 or WAV), whatever the headers claim.
 */
import type { AudioContentType, SpokenAudio } from './types';

export async function fetchAudio(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal, maxBytes: number): Promise<SpokenAudio> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
  if (!res.ok) {
    // The status only: providers' error texts can quote part of a rejected key.
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`voice provider answered HTTP ${res.status}`);
  }
  const bytes = await readAtMost(res, maxBytes);
  const contentType = sniffAudio(bytes);
  if (!contentType) throw new Error(`voice provider answered ${bytes.length} bytes that are not MP3 or WAV`);
  return { bytes, contentType };
}

async function readAtMost(res: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) throw new Error(`voice provider sent ${declared} bytes, more than the ${maxBytes} allowed`);
  const chunks: Buffer[] = [];
  let total = 0;
  if (!res.body) return Buffer.alloc(0);
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new Error(`voice provider sent more than the ${maxBytes} bytes allowed`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** MP3 (an ID3 tag or an MPEG audio frame sync) or RIFF WAVE; null for anything else. */
export function sniffAudio(bytes: Buffer): AudioContentType | null {
  if (bytes.length >= 12 && bytes.toString('ascii', 0, 4) === 'RIFF' && bytes.toString('ascii', 8, 12) === 'WAVE') return 'audio/wav';
  if (bytes.length >= 10 && bytes.toString('ascii', 0, 3) === 'ID3') return 'audio/mpeg';
  if (bytes.length >= 4 && bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0 && (bytes[1] & 0x06) !== 0) return 'audio/mpeg';
  return null;
}
