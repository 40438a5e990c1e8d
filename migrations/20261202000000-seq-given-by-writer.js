'use strict';

/**
 * The seq trigger keeps a seq the insert gives. The message writer numbers a lone message, or
 * a question and its answer, itself: one update of the session's counter per group instead of
 * one per row (the update takes the same row lock as the trigger's, so numbers stay
 * consecutive). An insert without seq, as a node of the previous release makes, is numbered by
 * the trigger as before. PostgreSQL only (SQLite has no trigger: its writer always numbers).
 */
const numberUnlessGiven = `CREATE OR REPLACE FUNCTION seance_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NEW.seq IS NULL THEN
      UPDATE sessions SET last_seq = last_seq + 1 WHERE id = NEW.session_id RETURNING last_seq INTO NEW.seq;
    END IF;
    RETURN NEW;
  END $$`;

const numberAlways = `CREATE OR REPLACE FUNCTION seance_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    UPDATE sessions SET last_seq = last_seq + 1 WHERE id = NEW.session_id RETURNING last_seq INTO NEW.seq;
    RETURN NEW;
  END $$`;

module.exports = {
  async up(queryInterface) {
    if (queryInterface.sequelize.getDialect() === 'postgres') await queryInterface.sequelize.query(numberUnlessGiven);
  },

  async down(queryInterface) {
    if (queryInterface.sequelize.getDialect() === 'postgres') await queryInterface.sequelize.query(numberAlways);
  },
};
