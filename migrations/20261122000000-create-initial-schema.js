'use strict';

/** Initial schema: sessions, messages, users, with the indexes history and listing need. */
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.createTable('sessions', {
      id: { type: Sequelize.UUID, primaryKey: true, allowNull: false },
      name: { type: Sequelize.STRING(100), allowNull: false },
      max_users: { type: Sequelize.INTEGER, allowNull: false, defaultValue: 6 },
      is_active: { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: true },
      created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.literal('CURRENT_TIMESTAMP') },
      ended_at: { type: Sequelize.DATE, allowNull: true },
    });
    await queryInterface.addIndex('sessions', ['created_at'], { name: 'sessions_created_at_idx' });
    await queryInterface.addIndex('sessions', ['is_active'], { name: 'sessions_is_active_idx' });

    await queryInterface.createTable('messages', {
      id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true, allowNull: false },
      session_id: {
        type: Sequelize.UUID,
        allowNull: false,
        references: { model: 'sessions', key: 'id' },
        onDelete: 'CASCADE',
      },
      user_id: { type: Sequelize.STRING(64), allowNull: true },
      user_name: { type: Sequelize.STRING(50), allowNull: true },
      text: { type: Sequelize.TEXT, allowNull: false },
      is_spirit: { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false },
      in_reply_to: { type: Sequelize.INTEGER, allowNull: true },
      timestamp: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.literal('CURRENT_TIMESTAMP') },
    });
    await queryInterface.addIndex('messages', ['session_id'], { name: 'messages_session_id_idx' });
    await queryInterface.addIndex('messages', ['session_id', 'timestamp'], { name: 'messages_session_id_timestamp_idx' });

    await queryInterface.createTable('users', {
      id: { type: Sequelize.STRING(64), primaryKey: true, allowNull: false },
      name: { type: Sequelize.STRING(50), allowNull: false },
      joined_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.literal('CURRENT_TIMESTAMP') },
    });
    await queryInterface.addIndex('users', ['name'], { name: 'users_name_idx' });
  },

  async down(queryInterface) {
    await queryInterface.dropTable('users');
    await queryInterface.dropTable('messages');
    await queryInterface.dropTable('sessions');
  },
};
