'use strict';
// sequelize-cli's view of the database, derived from the server's own validated config
// (built into dist/ by `npm run build`, which `npm install` runs) so both agree on DATABASE_URL.
const { loadConfig } = require('../dist/config');
const { sequelizeOptions } = require('../dist/server/db');

// Migrations sign no token: a migration job needs DATABASE_URL, not JWT_SECRET.
const config = loadConfig(process.env, { signsTokens: false });
const options = { ...sequelizeOptions(config), url: config.database.url.startsWith('sqlite:') ? undefined : config.database.url };

module.exports = { development: options, test: options, production: options };
