'use strict';

/**
 * Spoken audio, content-addressed and shared by every node: bytea on PostgreSQL, blob on
 * SQLite (Sequelize's BLOB). A row with null data is a claim: one node is making it.
 */
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.createTable('spoken_audio', {
      key: { type: Sequelize.STRING(64), primaryKey: true, allowNull: false },
      claimed_by: { type: Sequelize.STRING(64), allowNull: false },
      claimed_at: { type: Sequelize.DATE, allowNull: false },
      data: { type: Sequelize.BLOB, allowNull: true },
      content_type: { type: Sequelize.STRING(32), allowNull: true },
      byte_length: { type: Sequelize.INTEGER, allowNull: true },
      digest: { type: Sequelize.STRING(64), allowNull: true },
      provider: { type: Sequelize.STRING(16), allowNull: true },
      voice: { type: Sequelize.STRING(100), allowNull: false },
      fallback: { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false },
      created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.literal('CURRENT_TIMESTAMP') },
    });
  },

  async down(queryInterface) {
    await queryInterface.dropTable('spoken_audio');
  },
};
