// Which test file belongs to which tier (`npm run test:unit`, `test:integration`,
// `test:cluster`; `npm test` runs all three). The rule, for new files too:
//   unit         no PostgreSQL, Redis, nginx or build, and quick (the tier stays under
//                30 s): pure logic, in-memory storage, in-process SQLite, local fakes.
//                Listed below; the harness refuses to start a database, Redis or nginx
//                in this tier.
//   cluster      several Séance node processes (startCluster, or app containers), nginx,
//                a Redis Cluster or Sentinel set, or chaos. Listed below.
//   integration  everything else (the default): real PostgreSQL and Redis, one server in
//                process or one node process, a browser.
const unit = [
  'test/auth/tokens.test.ts',
  'test/chaos/check.test.ts',
  'test/config/config.test.ts',
  'test/db/pgStartupError.test.ts',
  'test/harness/unitTier.test.ts',
  'test/ordering/**/*.test.ts',
  'test/realtime/clientLimitRules.test.ts',
  'test/realtime/extensions/internals.test.ts',
  'test/server/clusterWire.test.ts',
  'test/services/answerRetry.test.ts',
  'test/services/rooms.test.ts',
  'test/services/sessionLifecycle.rules.test.ts',
  'test/services/spirit/**/*.test.ts',
  'test/services/voice/voiceService.test.ts',
];

const cluster = [
  'test/client/cluster.test.ts',
  'test/cluster/**/*.test.ts',
  'test/chaos/chaos.test.ts',
  'test/chaos/rules.test.ts',
  'test/db/outage.test.ts',
  'test/harness/harness.test.ts',
  'test/ops/monitoring.test.ts',
  'test/ops/topology.test.ts',
  'test/play/**/*.test.ts',
  'test/services/rateLimitLeases.test.ts',
  'test/services/rateLimits.test.ts',
  'test/services/sessionLifecycle.test.ts',
];

const all = ['test/**/*.test.ts'];

module.exports = {
  unit: { spec: unit, ignore: [] },
  integration: { spec: all, ignore: [...unit, ...cluster] },
  cluster: { spec: cluster, ignore: [] },
  // `npm test`: the three tiers in that order, fastest first.
  all: { spec: [...unit, ...all], ignore: [] },
};
