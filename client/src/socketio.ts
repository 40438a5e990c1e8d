import { io, type Socket } from 'socket.io-client';
import { SeanceError } from './errors';
import type { ClientToServerEvents, ErrorView, SendMessageAck, ServerToClientEvents } from './events';
import { rejection, type JoinRequest, type SentMessage, type Transport, type TransportEvents } from './room';

type SeanceSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
/** `send_message` with its acknowledgement required, as `timeout()` needs to type it. */
type AckedEmits = Pick<ClientToServerEvents, 'typing' | 'leave_session'> & { send_message: (data: { message: string }, ack: (reply: SendMessageAck) => void) => void };

const PASSED_ON = ['user_joined', 'user_left', 'user_typing', 'spirit_thinking', 'session_ended', 'error'] as const;
const RETRY_REFUSED_MS = 1000;

/**
 * The Socket.IO transport: the join rides in the handshake's `auth`, given as a function so
 * every automatic reconnect carries the latest `last_seq` and token.
 */
export function socketIoTransport(url: string, room: TransportEvents, join: () => JoinRequest): Transport {
  let closed = false;
  const socket: SeanceSocket = io(url, {
    autoConnect: false,
    transports: ['websocket', 'polling'],
    // In the handshake URL too, so the load balancer puts the whole session on one node.
    query: { session_id: join().session_id },
    auth: (cb) => cb({ ...join() }),
    reconnectionDelay: 250,
    reconnectionDelayMax: 5000,
  });
  const reconnectLater = (ms: number) =>
    setTimeout(() => {
      if (!closed && !socket.connected) socket.connect();
    }, ms);

  socket.on('session_joined', (data) => room.joined(data));
  socket.on('message_received', (m) => room.stored({ ...m, is_spirit: false }));
  socket.on('spirit_response', (m) => room.stored({ ...m, user_id: null, user_name: null, is_spirit: true }));
  for (const event of PASSED_ON) (socket as unknown as Socket).on(event, (data: unknown) => room.event(event, data as never));

  socket.on('connect_error', (err: Error & { data?: ErrorView }) => {
    // A refusal carries {code, message}; anything else is the network, which Socket.IO retries by itself.
    if (err.data?.code === undefined) return room.status('reconnecting');
    if (room.refused(err.data)) {
      room.status('reconnecting');
      reconnectLater(RETRY_REFUSED_MS);
    }
  });
  socket.on('disconnect', (reason) => {
    if (closed) return;
    room.status('reconnecting');
    // The server let go of us (a drain, a slow reader): Socket.IO would not come back by itself.
    if (reason === 'io server disconnect') reconnectLater(250);
  });

  return {
    open: () => {
      room.status('connecting');
      socket.connect();
    },
    sendMessage: (text, timeoutMs) =>
      new Promise<SentMessage>((resolve, reject) => {
        if (closed) return reject(new SeanceError('closed', 'CLOSED', 'The room is closed'));
        // Buffered by Socket.IO while reconnecting; the acknowledgement's timeout covers that too.
        (socket as unknown as Socket<ServerToClientEvents, AckedEmits>).timeout(timeoutMs).emit('send_message', { message: text }, (err, ack) => {
          if (err) reject(new SeanceError('timeout', 'TIMEOUT', `No answer within ${timeoutMs} ms; the message may still be stored`));
          else if (ack.ok) resolve({ id: ack.id, seq: ack.seq });
          else reject(rejection(ack.error));
        });
      }),
    typing: () => void socket.emit('typing', {}),
    close: (leave) => {
      if (closed) return;
      closed = true;
      if (leave && socket.connected) socket.emit('leave_session', {});
      socket.disconnect();
    },
  };
}
