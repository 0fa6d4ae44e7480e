/* QueueFloor: the browser side of the /floor Socket.IO namespace (docs/realtime.md).
 *
 *   const floor = QueueFloor.connect({
 *     auth: {branch: "JKT01"},        // or {ticket: token}, {device: "display"}, {} ...
 *     branch: "JKT01",                // the branch's code, for the proxy (optional)
 *     onSnapshot(snap) {},            // the whole state for this audience; render from it
 *     onChange(change) {},            // one change, in sequence order, never twice
 *     onStatus(state, detail) {},     // "connecting" | "online" | "offline" | "refused"
 *   });
 *
 * Events are hints, the database is the truth: the library keeps the last sequence number,
 * drops old and duplicate changes, and asks for a fresh snapshot when it sees a gap, after
 * every (re)connect (the server sends one; it asks if none came) and after 30 s of silence.
 * A change of kind "estimate" records no entry: it is a newer estimate of the state at its
 * `seq`, applied (to onChange) by a client that has that state (from `prev`, when given, up
 * to `seq`), ignored by one that is behind or ahead.
 *
 * QueueFloor.waitRange(fields, words): the estimator's range as customers read it
 * ("10-15 min") from a payload's `estimated_wait_s`/`estimated_wait_range`, with the words
 * the server renders (waits/present.py range_patterns); null when there is no estimate.
 * Needs socket.io-client (static/vendor/socket.io.min.js) loaded first. No framework.
 */
(function (global) {
  "use strict";

  var SILENCE_MS = 30000;
  var CONNECT_SNAPSHOT_MS = 5000;
  var ACK_TIMEOUT_MS = 10000;

  function connect(options) {
    var opts = options || {};
    var noop = function () {};
    var onSnapshot = opts.onSnapshot || noop;
    var onChange = opts.onChange || noop;
    var onStatus = opts.onStatus || noop;
    var io = opts.io || global.io;

    var state = {
      seq: null,          // last sequence number applied
      everySeq: true,     // false for a phone: it hears only about its own ticket
      status: "connecting",
      lastHeard: Date.now(),
      snapshots: 0,       // counters for tests and diagnostics
      changes: 0,
      ignored: 0,
      gaps: 0,
      estimates: 0,       // "estimate" changes applied
      requested: 0,
      fresh: true,        // next snapshot is taken whatever its seq (first one after a connect)
    };
    var pending = false;
    var connectTimer = null;
    // the server sends its snapshot as it accepts the connection, and socket.io-client hands
    // that event over before its own "connect": a snapshot already taken on this connection
    // means no timer (else every connection asked for a second one 5 s later)
    var snapshotThisConnection = false;

    var socket = io((opts.url || "") + "/floor", {
      auth: opts.auth || {},
      // the branch's code, in the handshake's URL: the reverse proxy sends every socket of a
      // branch to the same realtime process (README, nginx), which alone reads its changes
      query: opts.branch ? { branch: opts.branch } : {},
      transports: opts.transports,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 10000,
    });

    function setStatus(s, detail) {
      state.status = s;
      try { onStatus(s, detail); } catch (e) { report(e); }
    }

    function report(e) {
      if (global.console) global.console.error(e);
    }

    function applySnapshot(snap) {
      if (!snap || typeof snap.seq !== "number") return;
      if (!state.fresh && state.seq !== null && snap.seq < state.seq) return; // older than what we have
      state.fresh = false;
      snapshotThisConnection = true;
      state.seq = snap.seq;
      state.everySeq = snap.every_seq !== false;
      state.snapshots += 1;
      state.lastHeard = Date.now();
      clearTimeout(connectTimer);
      try { onSnapshot(snap); } catch (e) { report(e); }
    }

    function requestSnapshot() {
      if (pending || !socket.connected) return false;
      pending = true;
      state.requested += 1;
      socket.timeout(ACK_TIMEOUT_MS).emit("snapshot", null, function (err, snap) {
        pending = false;
        if (err || !snap || snap.error) return; // the silence timer or the next gap asks again
        applySnapshot(snap);
      });
      return true;
    }

    function handleChange(change) {
      state.lastHeard = Date.now();
      if (!change || typeof change.seq !== "number") return;
      if (state.seq === null) { requestSnapshot(); return; }
      if (change.kind === "estimate") { applyEstimate(change); return; }
      if (change.seq <= state.seq) { state.ignored += 1; return; } // old or duplicate
      // missed something? `prev` (displays, kiosks) names the entry heard before this one;
      // without it every sequence number is heard
      var missed = typeof change.prev === "number" ? change.prev > state.seq : change.seq > state.seq + 1;
      if (state.everySeq && missed) { // the truth, again
        state.gaps += 1;
        requestSnapshot();
        return;
      }
      state.seq = change.seq;
      state.changes += 1;
      try { onChange(change); } catch (e) { report(e); }
    }

    // a newer estimate of the state at change.seq, made after that change was pushed (the
    // server makes at most one estimate per branch per interval): it holds for a client that
    // has applied `prev` (the last entry it hears up to `seq`) or anything after it up to `seq`
    function applyEstimate(change) {
      var from = typeof change.prev === "number" ? change.prev : change.seq;
      if (change.seq < state.seq || (state.everySeq && from > state.seq)) {
        state.ignored += 1; // older than what we have, or a change before it has not come yet
        return;
      }
      state.seq = change.seq;
      state.estimates += 1;
      try { onChange(change); } catch (e) { report(e); }
    }

    socket.on("connect", function () {
      setStatus("online");
      clearTimeout(connectTimer);
      if (snapshotThisConnection) return;
      state.fresh = true;
      connectTimer = setTimeout(requestSnapshot, CONNECT_SNAPSHOT_MS); // unless the server's came
    });
    socket.on("snapshot", applySnapshot);
    socket.on("change", handleChange);
    socket.on("disconnect", function (reason) {
      pending = false;
      snapshotThisConnection = false;
      state.fresh = true; // the next connection's first snapshot is taken whatever its seq
      if (reason === "io server disconnect") { // the server no longer accepts this connection
        setStatus("refused", reason);
      } else {
        setStatus("offline", reason);
      }
    });
    socket.on("connect_error", function (err) {
      // a refusal by the server (not paired, signed out ...) is final; a network error retries
      if (socket.active) setStatus("offline", err && err.message);
      else setStatus("refused", err && err.message);
    });

    var silence = setInterval(function () {
      if (socket.connected && Date.now() - state.lastHeard > SILENCE_MS) {
        state.lastHeard = Date.now();
        requestSnapshot();
      }
    }, 5000);

    var handle = {
      socket: socket,
      state: state,
      requestSnapshot: requestSnapshot,
      close: function () { clearInterval(silence); clearTimeout(connectTimer); socket.close(); },
      // test hook: feed a change as if it came from the server, to exercise gap handling
      test: { inject: handleChange, silence: function () { state.lastHeard = 0; } },
    };
    QueueFloor.last = handle;
    return handle;
  }

  // the estimator's range as customers read it: waits/estimator.py friendly_range and
  // waits/text.py range_text, with the words of waits/present.py range_patterns
  function friendlyRange(lowS, highS) {
    var lo = Math.max(0, lowS) / 60, hi = Math.max(lo, highS / 60), a, b;
    if (hi < 10) { a = Math.floor(lo); b = Math.ceil(hi); }
    else { a = 5 * Math.floor(lo / 5); b = 5 * Math.ceil(hi / 5); }
    if (b <= a) b = a + (b < 10 ? 1 : 5);
    return [a, b];
  }
  function waitRange(fields, words) {
    if (!fields || fields.estimated_wait_s == null) return null;
    var span = fields.estimated_wait_range || { low_s: fields.estimated_wait_s, high_s: fields.estimated_wait_s };
    var m = friendlyRange(span.low_s, span.high_s);
    if (m[1] <= 1) return words.under_minute;
    if (m[0] === 0) return words.up_to.replace("{high}", String(m[1]));
    return words.range.replace("{low}", String(m[0])).replace("{high}", String(m[1]));
  }

  var QueueFloor = { connect: connect, last: null, friendlyRange: friendlyRange, waitRange: waitRange };
  global.QueueFloor = QueueFloor;
})(window);
