/** Responders for the fake provider server speaking a voice API: audio bytes, slowly if asked. */
import type { Responder } from '../spirit/fake-llm-server';

export const audio =
  (bytes: Buffer, contentType = 'audio/mpeg', delayMs = 0): Responder =>
  (res) => {
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': contentType, 'content-length': String(bytes.length) });
      res.end(bytes);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
