// `npm test` runs every tier; `npm run test:unit`, `test:integration` and `test:cluster` run
// one (test/tiers.js says which file is in which). `npm test -- FILE…` (or `npm test
// FILE…`) runs only the files named: mocha adds a config's `spec` to the files on the
// command line, so the tier's files apply only when no file is named.
const fs = require('node:fs');
const tiers = require('./test/tiers');

const namedFiles = process.argv.slice(2).some((arg) => !arg.startsWith('-') && fs.existsSync(arg));
// npm names the script it runs; the tier is what follows `test:`. The harness reads
// SEANCE_TEST_TIER to refuse servers in the unit tier (mocha's worker inherits it).
const script = process.env.npm_lifecycle_event ?? '';
const tier = process.env.SEANCE_TEST_TIER ?? (script.startsWith('test:') ? script.slice('test:'.length) : 'all');
if (!tiers[tier]) throw new Error(`Unknown test tier "${tier}": one of ${Object.keys(tiers).join(', ')}`);
process.env.SEANCE_TEST_TIER = tier;

module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/support/hooks.ts'],
  spec: namedFiles ? [] : tiers[tier].spec,
  ignore: namedFiles ? [] : tiers[tier].ignore,
  timeout: 30000,
  slow: 2000,
  reporter: 'spec',
};
