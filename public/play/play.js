/*
 * The /play page: join a séance by link (or open one), chat, see who is present, watch the
 * spirit think and answer, hear its voice. It speaks Socket.IO with the client the server
 * serves, with `auth` as a function so that every reconnect resumes where it left off.
 */
(function () {
  'use strict';

  var $ = function (id) {
    return document.getElementById(id);
  };
  var storage = window.localStorage;
  var state = { socket: null, sessionId: null, me: null, lastSeq: null, people: new Map(), shown: new Set(), thinking: new Set() };

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
  function noteSeq(message) {
    if (typeof message.seq === 'number' && (state.lastSeq === null || message.seq > state.lastSeq)) state.lastSeq = message.seq;
  }

  function addMessage(message, spirit) {
    noteSeq(message);
    if (state.shown.has(message.id)) return;
    state.shown.add(message.id);
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
  function join(sessionId, name) {
    if (state.socket) state.socket.close();
    state.sessionId = sessionId;
    storage.setItem('seance.name', name);
    setStatus('connecting', 'connecting…');
    var socket = io({
      transports: ['websocket', 'polling'],
      // In the handshake URL, so the load balancer puts everyone in this session on one node.
      query: { session_id: sessionId },
      // A function, so each reconnect sends the last seq seen and resumes instead of starting over.
      auth: function (cb) {
        var auth = { session_id: sessionId, name: name, user_id: userId() };
        if (state.lastSeq !== null) auth.last_seq = state.lastSeq;
        cb(auth);
      },
    });
    state.socket = socket;

    socket.on('connect', function () {
      setStatus('connected', 'connected');
      showNode();
    });
    socket.on('disconnect', function (reason) {
      setStatus('reconnecting', 'reconnecting…');
      if (reason === 'io server disconnect') setStatus('idle', 'disconnected');
    });
    socket.on('connect_error', function (err) {
      var code = (err && err.data && err.data.code) || err.message;
      if (code === 'SESSION_NOT_FOUND' || code === 'SESSION_INACTIVE' || code === 'SESSION_FULL' || code === 'VALIDATION_ERROR' || code === 'UNAUTHORIZED') {
        socket.close();
        leaveRoom();
        showError('start-error', (err.data && err.data.message) || code);
        setStatus('idle', 'not connected');
      } else {
        setStatus('reconnecting', 'reconnecting…');
      }
    });

    socket.on('session_joined', function (data) {
      state.me = data.you;
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
      // A resume (the server had everything after last_seq) keeps what is shown and adds the rest.
      $('messages').dataset.resumed = String(Boolean(data.resumed));
      if (!data.resumed) {
        $('messages').textContent = '';
        state.shown.clear();
        state.thinking.clear();
        renderThinking();
      }
      data.messages.forEach(function (m) {
        addMessage(m, m.is_spirit);
      });
      $('start').hidden = true;
      $('room').hidden = false;
      showError('start-error', '');
      $('question').focus();
    });
    socket.on('user_joined', function (person) {
      state.people.set(person.id, person);
      renderPeople();
    });
    socket.on('user_left', function (person) {
      state.people.delete(person.id);
      renderPeople();
    });
    socket.on('message_received', function (message) {
      addMessage(message, false);
    });
    socket.on('spirit_thinking', function (data) {
      state.thinking.add(data.in_reply_to);
      renderThinking();
    });
    socket.on('spirit_response', function (answer) {
      state.thinking.delete(answer.in_reply_to);
      renderThinking();
      addMessage(answer, true);
    });
    socket.on('session_ended', function () {
      showError('room-error', 'The séance has ended.');
      setStatus('idle', 'ended');
    });
    socket.on('error', function (err) {
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
    if (!text || !state.socket) return;
    state.socket.emit('send_message', { message: text }, function (ack) {
      if (ack && ack.ok) {
        $('question').value = '';
        showError('room-error', '');
      } else if (ack) {
        showError('room-error', ack.error.message);
      }
    });
  });
})();
