/**
 * Two real nodes on one real Redis, and garbage published on every channel they listen to
 * (sharded and classic Pub/Sub): each node logs and drops what it cannot use, stays up, and
 * keeps delivering across nodes.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { startCluster, type ClusterHandle } from '../../harness/cluster';
import { http, joinSocket, RawClient, sendWithAck } from '../support/clients';
import { createSession } from '../support/factories';
import { sharedPostgres } from '../support/hooks';

/** What anyone with access to Redis may publish: not JSON, wrong shapes, wrong types. */
const GARBAGE = [
  '[null]',
  'null',
  '[1,"x",true]',
  'not json at all',
  '{}',
  '{"uid":"x","nsp":"/","type":3}',
  '{"uid":"x","nsp":"/","type":3,"data":null}',
  '{"uid":"x","nsp":"/","type":3,"data":{"packet":{"type":2,"data":"x"},"opts":{"rooms":"nope"}}}',
  '[{"uid":"x","nsp":"/","type":6,"data":{}}]',
  '{"uid":"x","nsp":"/","type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":null}}',
  '{"uid":"x","type":8,"data":{"requestId":"r","sockets":null}}',
  '{"uid":"x","type":11,"data":null}',
  '{"type":"revoke"}',
  '{"type":"released"}',
  '{"type":"revoke","key":{},"from":null,"id":1}',
];

describe('cluster: malformed messages between nodes', function () {
  this.timeout(60_000);
  let cluster: ClusterHandle;
  let redis: Redis;

  before(async function () {
    this.timeout(90_000);
    cluster = await startCluster({ nodes: 2, nginx: false, postgres: await sharedPostgres(), env: { MESSAGE_RATE_LIMIT: '1000' } });
    redis = new Redis(cluster.redis.url);
  });
  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('are logged and dropped: both nodes stay up and keep delivering', async () => {
    const [one, two] = cluster.nodes;
    const session = await createSession(one.url);
    const sio = await joinSocket(one.url, { session_id: session.id, name: 'Ann' });
    const raw = await RawClient.join(two.url.replace(/^http/, 'ws'), session.id, { name: 'Raw' });
    try {
      // Every channel a node listens on, sharded (the adapter's) and classic (rate limit leases).
      const sharded = (await redis.call('PUBSUB', 'SHARDCHANNELS', 'seance*')) as string[];
      const classic = (await redis.call('PUBSUB', 'CHANNELS', 'seance*')) as string[];
      expect(sharded.some((c) => c.includes(session.id))).to.equal(true);
      expect(classic.length).to.be.at.least(2);
      let published = 0;
      for (const body of GARBAGE) {
        for (const channel of sharded) published += Number(await redis.call('SPUBLISH', channel, body));
        for (const channel of classic) published += await redis.publish(channel, body);
      }
      expect(published).to.be.at.least(GARBAGE.length * 4);

      for (const node of cluster.nodes) expect((await http(node.url, 'GET', '/livez')).status, node.url).to.equal(200);
      const ack = await sendWithAck(sio, { message: 'Still here?' });
      const arrived = await raw.inbox.waitFor('message_received', (m) => m.id === ack.id);
      expect(arrived.message).to.equal('Still here?');
      raw.send({ event: 'send_message', data: { message: 'And back?' } });
      expect((await sio.inbox.waitFor('message_received', (m) => m.message === 'And back?')).user_name).to.equal('Raw');
      // Neither process ended along the way.
      const exits = await Promise.race([Promise.any(cluster.nodes.map((n) => n.exited)), new Promise((resolve) => setTimeout(resolve, 50, 'running'))]);
      expect(exits).to.equal('running');
    } finally {
      sio.close();
      raw.close();
    }
  });
});
