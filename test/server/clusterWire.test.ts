/**
 * What a node accepts from the others (server/cluster/wire.ts): the adapter's messages as
 * nodes send them pass; anything else is refused with a reason, never thrown.
 */
import { expect } from 'chai';
import { MessageType } from 'socket.io-adapter';
import { readClusterMessage, readClusterResponse } from '../../server/cluster/wire';

const opts = { rooms: ['seance:s:1'], except: ['seance:u:1:alice'], flags: {} };
const broadcast = (data: unknown) => ({ uid: 'node-a', nsp: '/', type: MessageType.BROADCAST, data, v: 2 });
const goodData = { packet: { type: 2, data: ['message_received', { seq: 1 }], nsp: '/' }, opts };

describe('cluster wire: what a node accepts from the others', () => {
  it('accepts broadcasts as nodes send them, with or without a version or an ack id', () => {
    expect(readClusterMessage(broadcast(goodData)).ok).to.equal(true);
    expect(readClusterMessage({ ...broadcast(goodData), v: undefined }).ok).to.equal(true);
    expect(readClusterMessage(broadcast({ ...goodData, requestId: 'r-1' })).ok).to.equal(true);
    expect(readClusterMessage({ uid: 'node-a', nsp: '/', type: MessageType.DISCONNECT_SOCKETS, data: { opts, close: true } }).ok).to.equal(true);
  });

  const refused: Array<[string, unknown]> = [
    ['null', null],
    ['an array', [goodData]],
    ['no uid', { nsp: '/', type: MessageType.BROADCAST, data: goodData }],
    ['a type as text', { uid: 'a', nsp: '/', type: '3', data: goodData }],
    ['an unknown type', { uid: 'a', nsp: '/', type: 99, data: goodData }],
    ['no namespace', { uid: 'a', type: MessageType.BROADCAST, data: goodData }],
    ['a version as text', { ...broadcast(goodData), v: '2' }],
    ['no data', broadcast(undefined)],
    ['no packet', broadcast({ opts })],
    ['a packet type out of range', broadcast({ ...goodData, packet: { type: 9, data: [] } })],
    ['packet data that is no list', broadcast({ ...goodData, packet: { type: 2, data: 'x' } })],
    ['rooms that are no list', broadcast({ ...goodData, opts: { ...opts, rooms: 'nope' } })],
    ['a room that is no name', broadcast({ ...goodData, opts: { ...opts, rooms: [{}] } })],
    ['a room name too long', broadcast({ ...goodData, opts: { ...opts, rooms: ['r'.repeat(1025)] } })],
    ['no except', broadcast({ ...goodData, opts: { rooms: [], flags: {} } })],
    ['no flags', broadcast({ ...goodData, opts: { rooms: [], except: [] } })],
    ['an ack id that is no name', broadcast({ ...goodData, requestId: 7 })],
    ['a join without rooms', { uid: 'a', nsp: '/', type: MessageType.SOCKETS_JOIN, data: { opts, rooms: null } }],
  ];
  for (const [what, message] of refused) {
    it(`refuses a message with ${what}, saying why`, () => {
      const verdict = readClusterMessage(message);
      expect(verdict.ok).to.equal(false);
      if (!verdict.ok) expect(verdict.reason).to.be.a('string').and.not.equal('');
    });
  }

  it('takes only responses on the response channel', () => {
    expect(readClusterResponse({ uid: 'b', type: MessageType.BROADCAST_CLIENT_COUNT, data: { requestId: 'r', clientCount: 2 } }).ok).to.equal(true);
    expect(readClusterResponse(broadcast(goodData)).ok).to.equal(false);
    expect(readClusterResponse({ uid: 'b', type: MessageType.FETCH_SOCKETS_RESPONSE, data: { requestId: 'r', sockets: null } }).ok).to.equal(false);
  });
});
