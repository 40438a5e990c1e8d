'use strict';

/**
 * `answer_owner`: the node (its NODE_ID) that owes a question its spirit answer; null when
 * nothing is owed. Storing the answer clears it in the same write, and a node that takes a
 * dead node's debt over changes it with a conditional update, so one question is answered
 * once for the whole cluster. The partial index holds only the questions still owed: the
 * sweep that finds them reads a handful of rows however long the history.
 */
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('messages', 'answer_owner', { type: Sequelize.STRING(128), allowNull: true });
    await queryInterface.addIndex('messages', ['answer_owner', 'id'], { name: 'messages_owed_answers_idx', where: { answer_owner: { [Sequelize.Op.ne]: null } } });
  },

  async down(queryInterface) {
    await queryInterface.removeIndex('messages', 'messages_owed_answers_idx');
    // Plain SQL: Sequelize's removeColumn on SQLite rebuilds the table and turns its unique
    // (session_id, seq) index into a constraint that the seq migration's down cannot drop.
    await queryInterface.sequelize.query('ALTER TABLE messages DROP COLUMN answer_owner');
  },
};
