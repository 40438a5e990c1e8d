/*
 * The /play page: join a séance by link (or open one), chat, see who is present, watch the
 * spirit think and answer, hear its voice. It runs on @seance/client (its browser build,
 * served at /play/seance-client.js as the global `Seance`), as any frontend would: the client
 * rejoins and resumes by itself, and hands on each stored message once, in order.
 */
(function () {
  'use strict';

  var $ = function (id) {
    return document.getElementById(id);
  };
  var storage = window.localStorage;
  var state = { room: null, sessionId: null, me: null, people: new Map(), thinking: new Set() };

  // Which node serves us: the node's id from /health (the reply's X-Seance-Node says the same),
  // asked with the session like the connection, so the load balancer picks the same node.
  // Asked again on every (re)connect: after a node goes away, the load balancer picks another.
  function showNode() {
    var query = state.sessionId ? '?session_id=' + encodeURIComponent(state.sessionId) : '';
    fetch('/health' + query, { cache: 'no-store' })
      .then(function (res) {
        return res.json().then(function (body) {
          return body.node_id || res.headers.get('X-Seance-Node');
        });
      })
      .then(function (node) {
        $('node').textContent = node || 'unknown';
      })
      .catch(function () {
        $('node').textContent = 'unknown';
      });
  }
  showNode();

  function sessionFromInput(value) {
    var text = (value || '').trim();
    var match = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(text);
    return match ? match[0].toLowerCase() : text;
  }

  function userId() {
    // One participant per browser: a reload or a second tab is the same person, not a new seat.
    var id = storage.getItem('seance.user_id');
    if (!id) {
      id = 'p-' + Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
      storage.setItem('seance.user_id', id);
    }
    return id;
  }

  // The token the last join gave: a second tab (or a reload) comes back as the same participant.
  function keptToken() {
    return storage.getItem('seance.token') || undefined;
  }

  function setStatus(stateName, text) {
    $('status').dataset.state = stateName;
    $('status').textContent = text;
  }

  function showError(where, text) {
    $(where).textContent = text || '';
  }

  // --- the people present -------------------------------------------------------------
  function renderPeople() {
    var list = $('people');
    list.textContent = '';
    state.people.forEach(function (person) {
      var li = document.createElement('li');
      li.textContent = person.name;
      li.dataset.id = person.id;
      if (state.me && person.id === state.me.id) li.className = 'me';
      list.appendChild(li);
    });
  }

  // --- messages ------------------------------------------------------------------------
  // The client hands each stored message on once, in seq order: the page only draws it.
  function addMessage(message) {
    var spirit = message.is_spirit;
    var li = document.createElement('li');
    li.dataset.id = String(message.id);
    li.className = spirit ? 'spirit' : 'chat';
    var who = document.createElement('span');
    who.className = 'who';
    who.textContent = spirit ? 'The spirit' : message.user_name;
    var text = document.createElement('span');
    text.className = 'text';
    text.textContent = message.message;
    li.appendChild(who);
    li.appendChild(text);
    if (spirit && message.audio_url) li.appendChild(voice(message.audio_url));
    $('messages').appendChild(li);
    li.scrollIntoView({ block: 'end' });
  }

  function voice(url) {
    var audio = document.createElement('audio');
    audio.controls = true;
    audio.preload = 'auto';
    audio.dataset.state = 'loading';
    audio.addEventListener('loadeddata', function () {
      audio.dataset.state = 'loaded';
    });
    audio.addEventListener('error', function () {
      audio.dataset.state = 'error';
    });
    audio.src = url;
    // Allowed once the person has clicked on the page (Join, Ask); silently not otherwise.
    var playing = audio.play();
    if (playing && playing.catch) playing.catch(function () {});
    return audio;
  }

  function renderThinking() {
    $('thinking').hidden = state.thinking.size === 0;
  }

  // --- joining --------------------------------------------------------------------------
  var STATUS_TEXT = { connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', closed: 'disconnected' };

  function join(sessionId, name, retried) {
    if (state.room) state.room.close();
    state.sessionId = sessionId;
    state.thinking.clear();
    renderThinking();
    $('messages').textContent = '';
    storage.setItem('seance.name', name);
    var token = keptToken();
    var room = Seance.connect({ url: location.origin, sessionId: sessionId, name: name, userId: userId(), token: token });
    state.room = room;

    room.on('status', function (status) {
      setStatus(status === 'closed' ? 'idle' : status, STATUS_TEXT[status]);
      if (status === 'connected') showNode();
    });
    room.on('refused', function (err) {
      // A kept token that no longer holds (expired, another deployment's): once more without it.
      if (err.code === 'UNAUTHORIZED' && token && !retried) {
        storage.removeItem('seance.token');
        return join(sessionId, name, true);
      }
      leaveRoom();
      showError('start-error', err.message || err.code);
      setStatus('idle', 'not connected');
    });
    room.on('joined', function (data) {
      state.me = data.you;
      if (room.token) storage.setItem('seance.token', room.token);
      $('session-name').textContent = data.session.name;
      var link = location.origin + '/play?session=' + data.session.id;
      $('share').href = link;
      $('share').textContent = link;
      history.replaceState(null, '', '/play?session=' + data.session.id);
      state.people = new Map(
        data.users.map(function (u) {
          return [u.id, u];
        }),
      );
      renderPeople();
      // A resume (the server had everything after the last seq shown) adds only what was missed.
      $('messages').dataset.resumed = String(Boolean(data.resumed));
      $('start').hidden = true;
      $('room').hidden = false;
      showError('start-error', '');
      $('question').focus();
    });
    room.on('message', function (message) {
      if (message.is_spirit && message.in_reply_to !== undefined) {
        state.thinking.delete(message.in_reply_to);
        renderThinking();
      }
      addMessage(message);
    });
    room.on('user_joined', function (person) {
      state.people.set(person.id, person);
      renderPeople();
    });
    room.on('user_left', function (person) {
      state.people.delete(person.id);
      renderPeople();
    });
    room.on('spirit_thinking', function (data) {
      state.thinking.add(data.in_reply_to);
      renderThinking();
    });
    room.on('session_ended', function () {
      showError('room-error', 'The séance has ended.');
      setStatus('idle', 'ended');
    });
    room.on('error', function (err) {
      showError('room-error', err.message || err.code);
    });
  }

  function leaveRoom() {
    $('room').hidden = true;
    $('start').hidden = false;
  }

  // --- forms ---------------------------------------------------------------------------
  $('name').value = storage.getItem('seance.name') || '';
  var fromLink = new URLSearchParams(location.search).get('session');
  if (fromLink) $('session').value = fromLink;

  $('join-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var name = $('name').value.trim();
    var sessionId = sessionFromInput($('session').value);
    if (!name) return showError('start-error', 'Tell the spirit your name first.');
    if (!sessionId) return showError('start-error', 'Paste a séance link, or open a new séance.');
    showError('start-error', '');
    join(sessionId, name);
  });

  $('create').addEventListener('click', function () {
    var name = $('name').value.trim();
    if (!name) return showError('start-error', 'Tell the spirit your name first.');
    fetch('/api/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Séance of ' + name }) })
      .then(function (res) {
        return res.json();
      })
      .then(function (body) {
        if (!body.success) throw new Error(body.error.message);
        $('session').value = body.data.id;
        join(body.data.id, name);
      })
      .catch(function (err) {
        showError('start-error', err.message);
      });
  });

  $('ask-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var text = $('question').value.trim();
    if (!text || !state.room) return;
    state.room.send(text).then(
      function () {
        $('question').value = '';
        showError('room-error', '');
      },
      function (err) {
        showError('room-error', err.message);
      },
    );
  });
})();
