// `npm test` runs every suite; `npm test -- FILE…` (or `npm test FILE…`) runs only the
// files named. Mocha adds a config's `spec` to the files on the command line, so the
// default applies only when no file is named.
const fs = require('node:fs');

const namedFiles = process.argv.slice(2).some((arg) => !arg.startsWith('-') && fs.existsSync(arg));

module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/support/hooks.ts'],
  spec: namedFiles ? [] : ['test/**/*.test.ts'],
  timeout: 30000,
  slow: 2000,
  reporter: 'spec',
};
