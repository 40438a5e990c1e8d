/**
 * Reads audio the way a player would, independently of the server's own code: a WAV's RIFF
 * header and PCM, an MP3's frame headers. Used to prove the audio is real (it parses, it
 * lasts about as long as the text, it is not silence).
 */

export interface WavInfo {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  seconds: number;
  /** Root mean square of the samples, 0..1. */
  rms: number;
  /** The loudest sample, 0..1. */
  peak: number;
}

export function parseWav(bytes: Buffer): WavInfo {
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not RIFF/WAVE');
  if (bytes.readUInt32LE(4) !== bytes.length - 8) throw new Error(`RIFF size ${bytes.readUInt32LE(4)} does not match ${bytes.length - 8}`);
  let fmt: { channels: number; sampleRate: number; bits: number } | null = null;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      if (bytes.readUInt16LE(at + 8) !== 1) throw new Error('not PCM');
      fmt = { channels: bytes.readUInt16LE(at + 10), sampleRate: bytes.readUInt32LE(at + 12), bits: bytes.readUInt16LE(at + 22) };
    } else if (id === 'data') {
      if (!fmt || fmt.bits !== 16) throw new Error('no 16-bit fmt chunk before data');
      if (at + 8 + size > bytes.length) throw new Error('data chunk runs past the end');
      const count = size / 2;
      let sum = 0;
      let peak = 0;
      for (let i = 0; i < count; i++) {
        const s = bytes.readInt16LE(at + 8 + i * 2) / 32768;
        sum += s * s;
        peak = Math.max(peak, Math.abs(s));
      }
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, bitsPerSample: fmt.bits, seconds: count / fmt.channels / fmt.sampleRate, rms: Math.sqrt(sum / count), peak };
    }
    at += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

const MP3_BITRATES_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MP3_RATES = [44100, 48000, 32000];

/** MPEG-1 Layer III frames, walked header to header: their count and the seconds they hold. */
export function parseMp3(bytes: Buffer): { frames: number; seconds: number; sampleRate: number } {
  let at = 0;
  if (bytes.toString('ascii', 0, 3) === 'ID3') at = 10 + ((bytes[6] << 21) | (bytes[7] << 14) | (bytes[8] << 7) | bytes[9]);
  let frames = 0;
  let sampleRate = 0;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff || (bytes[at + 1] & 0xfe) !== 0xfa) throw new Error(`no MPEG-1 Layer III frame sync at byte ${at}`);
    const bitrate = MP3_BITRATES_KBPS[bytes[at + 2] >> 4];
    sampleRate = MP3_RATES[(bytes[at + 2] >> 2) & 3];
    if (!bitrate || !sampleRate) throw new Error(`bad frame header at byte ${at}`);
    const padding = (bytes[at + 2] >> 1) & 1;
    at += Math.floor((144 * bitrate * 1000) / sampleRate) + padding;
    frames++;
  }
  if (frames === 0) throw new Error('no MP3 frames');
  return { frames, seconds: (frames * 1152) / sampleRate, sampleRate };
}

/** `count` silent-payload MPEG-1 Layer III frames at 128 kbps, 44.1 kHz: what a fake provider sends. */
export function fakeMp3(count: number, marker = 0): Buffer {
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  frame[100] = marker & 0xff;
  return Buffer.concat(Array.from({ length: count }, () => frame));
}
