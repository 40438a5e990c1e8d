'use strict';

/**
 * `seq`: every message's place in its session, 1, 2, 3, … with no gap and no repeat.
 * `sessions.last_seq` is the session's counter. Existing messages are numbered in id order.
 *
 * PostgreSQL: a BEFORE INSERT trigger takes the next number from the session's row in the
 * insert's own statement, so concurrent writers on several nodes queue on that row and get
 * consecutive numbers, and so does a node of the previous release (which knows nothing of
 * `seq`) while a cluster is upgraded one node at a time. The migration holds the messages
 * table while it numbers the rows, so no insert slips in between.
 * SQLite (one node, one writer): the message writer takes the numbers in its transaction.
 */
module.exports = {
  async up(queryInterface, Sequelize) {
    const sequelize = queryInterface.sequelize;
    if (sequelize.getDialect() === 'postgres') {
      await sequelize.transaction(async (transaction) => {
        const run = (sql) => sequelize.query(sql, { transaction });
        await run('LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE');
        await run('ALTER TABLE sessions ADD COLUMN last_seq integer NOT NULL DEFAULT 0');
        await run('ALTER TABLE messages ADD COLUMN seq integer');
        await run(`UPDATE messages m SET seq = numbered.seq
                   FROM (SELECT id, row_number() OVER (PARTITION BY session_id ORDER BY id) AS seq FROM messages) numbered
                   WHERE m.id = numbered.id`);
        await run(`UPDATE sessions s SET last_seq = counted.last_seq
                   FROM (SELECT session_id, max(seq) AS last_seq FROM messages GROUP BY session_id) counted
                   WHERE s.id = counted.session_id`);
        await run(`CREATE FUNCTION seance_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                     UPDATE sessions SET last_seq = last_seq + 1 WHERE id = NEW.session_id RETURNING last_seq INTO NEW.seq;
                     RETURN NEW;
                   END $$`);
        await run('CREATE TRIGGER messages_assign_seq BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION seance_assign_seq()');
        await run('ALTER TABLE messages ALTER COLUMN seq SET NOT NULL');
        await run('CREATE UNIQUE INDEX messages_session_id_seq_idx ON messages (session_id, seq)');
      });
      return;
    }
    await queryInterface.addColumn('sessions', 'last_seq', { type: Sequelize.INTEGER, allowNull: false, defaultValue: 0 });
    await queryInterface.addColumn('messages', 'seq', { type: Sequelize.INTEGER, allowNull: true });
    await sequelize.query('UPDATE messages SET seq = (SELECT count(*) FROM messages older WHERE older.session_id = messages.session_id AND older.id <= messages.id)');
    await sequelize.query('UPDATE sessions SET last_seq = COALESCE((SELECT max(seq) FROM messages WHERE messages.session_id = sessions.id), 0)');
    await queryInterface.addIndex('messages', ['session_id', 'seq'], { name: 'messages_session_id_seq_idx', unique: true });
  },

  async down(queryInterface) {
    const sequelize = queryInterface.sequelize;
    if (sequelize.getDialect() === 'postgres') {
      await sequelize.query('DROP TRIGGER IF EXISTS messages_assign_seq ON messages');
      await sequelize.query('DROP FUNCTION IF EXISTS seance_assign_seq()');
    }
    // Plain DROP COLUMN (SQLite ≥ 3.35 has it too): Sequelize's SQLite removeColumn copies the
    // table, which the messages' foreign key to sessions refuses.
    await sequelize.query('DROP INDEX IF EXISTS messages_session_id_seq_idx');
    await sequelize.query('ALTER TABLE messages DROP COLUMN seq');
    await sequelize.query('ALTER TABLE sessions DROP COLUMN last_seq');
  },
};
