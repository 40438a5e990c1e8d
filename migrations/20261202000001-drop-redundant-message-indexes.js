'use strict';

/**
 * Two indexes of the messages table that `(session_id, seq)` makes redundant: `(session_id)`
 * is its prefix, and `(session_id, timestamp)` served only the idle-session sweep, which now
 * reads each session's latest message by `seq`. Every stored message paid for both (a third of
 * the write-ahead log a message wrote, and its flush is on the message's path).
 */
module.exports = {
  async up(queryInterface) {
    await queryInterface.removeIndex('messages', 'messages_session_id_timestamp_idx');
    await queryInterface.removeIndex('messages', 'messages_session_id_idx');
  },

  async down(queryInterface) {
    await queryInterface.addIndex('messages', ['session_id'], { name: 'messages_session_id_idx' });
    await queryInterface.addIndex('messages', ['session_id', 'timestamp'], { name: 'messages_session_id_timestamp_idx' });
  },
};
