'use strict';

/**
 * How long spoken audio is kept. An answer's audio belongs to its message (`message_id`) and
 * goes with it; audio made for any other text (`tts/generate`) is kept least recently used
 * first out (`used_at`) within TTS_CACHE_MAX_BYTES. `content_key` is the content address (the
 * hash of provider, settings, voice and text) whatever the row: a text already spoken for one
 * is copied for the other, not asked of the provider again. Rows made before are content-keyed
 * and belong to no message.
 */
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('spoken_audio', 'content_key', { type: Sequelize.STRING(64), allowNull: true });
    await queryInterface.addColumn('spoken_audio', 'message_id', { type: Sequelize.INTEGER, allowNull: true });
    await queryInterface.addColumn('spoken_audio', 'used_at', { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.literal('CURRENT_TIMESTAMP') });
    await queryInterface.sequelize.query('UPDATE spoken_audio SET content_key = key, used_at = created_at');
    await queryInterface.addIndex('spoken_audio', ['content_key'], { name: 'spoken_audio_content_key_idx' });
    await queryInterface.addIndex('spoken_audio', ['message_id'], { name: 'spoken_audio_message_id_idx' });
  },

  async down(queryInterface) {
    await queryInterface.removeIndex('spoken_audio', 'spoken_audio_message_id_idx');
    await queryInterface.removeIndex('spoken_audio', 'spoken_audio_content_key_idx');
    await queryInterface.removeColumn('spoken_audio', 'used_at');
    await queryInterface.removeColumn('spoken_audio', 'message_id');
    await queryInterface.removeColumn('spoken_audio', 'content_key');
  },
};
