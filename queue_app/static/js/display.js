/* Lobby display: renders the floor's snapshot and changes, chimes and speaks every call.
 *
 * Test hook: window.queueAnnouncer = {queue: [...waiting], current, spoken: [...done], log: [...]}
 * Each entry: {seq, kind, number, counter, text, lang, queuedAt, startedAt, endedAt, result}.
 * Announcements play one after another and never cut each other off (nothing ever calls
 * speechSynthesis.cancel()); a recall is a new announcement.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("display-config").textContent);
  var S = config.strings;
  var LANG_TAGS = { id: "id-ID", en: "en-US" };
  var MAX_RECENT = 7;
  var MAX_CATCH_UP = 3; // calls made while disconnected that are still announced

  var el = function (sel) { return document.querySelector(sel); };
  var body = document.body;
  var nowBody = el('[data-testid="now"]');

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, k) { return values[k] == null ? "" : values[k]; });
  }

  function serviceName(service) {
    if (!service) return "";
    return (service.names && service.names[config.locale]) || service.name || service.code;
  }

  // "A023" -> "A 0 2 3": every character on its own, so it is spoken digit by digit
  function spelled(number) {
    return String(number).replace(/[^0-9A-Za-z]/g, "").split("").join(" ");
  }

  // --- sound: a generated two-tone chime and the browser's own (offline) voices -----------
  var audio = null;
  function audioContext() {
    if (!audio) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
    }
    return audio;
  }

  function chime() {
    return new Promise(function (resolve) {
      var ctx = audioContext();
      if (!ctx) return resolve("no-audio");
      if (ctx.state === "suspended") { ctx.resume().catch(function () {}); soundOff(true); }
      var t = ctx.currentTime + 0.05;
      [[880, 0], [660, 0.35]].forEach(function (tone) {
        var osc = ctx.createOscillator();
        var gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = tone[0];
        gain.gain.setValueAtTime(0.0001, t + tone[1]);
        gain.gain.exponentialRampToValueAtTime(0.5, t + tone[1] + 0.03);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + tone[1] + 0.6);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t + tone[1]);
        osc.stop(t + tone[1] + 0.65);
      });
      setTimeout(function () { resolve("chimed"); }, 1000);
    });
  }

  function pickVoice(lang) {
    var synth = window.speechSynthesis;
    if (!synth) return null;
    var voices = synth.getVoices() || [];
    var prefix = lang.split("-")[0].toLowerCase();
    var local = voices.filter(function (v) { return v.localService !== false; });
    var match = function (list) {
      return list.find(function (v) { return v.lang && v.lang.toLowerCase().replace("_", "-") === lang.toLowerCase(); }) ||
        list.find(function (v) { return v.lang && v.lang.toLowerCase().indexOf(prefix) === 0; });
    };
    return match(local) || null; // offline voices only: never a cloud voice
  }

  function speak(text, lang) {
    return new Promise(function (resolve) {
      var synth = window.speechSynthesis;
      // without speech (or without a voice) the announcement still takes its time on screen
      var fallback = function (why) { setTimeout(function () { resolve(why); }, 1500); };
      if (!synth || typeof SpeechSynthesisUtterance === "undefined") return fallback("no-speech");
      var u = new SpeechSynthesisUtterance(text);
      u.lang = lang;
      var voice = pickVoice(lang);
      if (voice) u.voice = voice;
      u.rate = 0.9;
      var done = false;
      var finish = function (why) { if (!done) { done = true; clearTimeout(guard); resolve(why); } };
      u.onend = function () { finish("spoken"); };
      u.onerror = function (e) {
        if (e && e.error === "not-allowed") soundOff(true);
        if (!done) { done = true; clearTimeout(guard); fallback("error:" + (e && e.error)); }
      };
      // some engines never fire onend: give up waiting after a generous time for the text
      var guard = setTimeout(function () { finish("timeout"); }, 4000 + text.length * 150);
      synth.speak(u);
    });
  }

  var announcer = { queue: [], current: null, spoken: [], log: [] };
  window.queueAnnouncer = announcer;
  var busy = false;

  function announce(call) {
    var number = call.ticket.number;
    var counter = call.counter ? call.counter.name : "";
    var template = call.kind === "recall" ? S.announce_recall : S.announce;
    var entry = {
      seq: call.seq, kind: call.kind, number: number, counter: counter,
      text: fmt(template, { number: spelled(number), counter: counter }),
      lang: LANG_TAGS[config.locale] || config.locale,
      queuedAt: Date.now(), startedAt: null, endedAt: null, result: null,
    };
    announcer.queue.push(entry);
    announcer.log.push(entry);
    next();
  }

  function next() {
    if (busy || !announcer.queue.length) return;
    busy = true;
    var entry = announcer.queue.shift();
    announcer.current = entry;
    entry.startedAt = Date.now();
    chime().then(function () { return speak(entry.text, entry.lang); }).then(function (result) {
      entry.result = result;
      entry.endedAt = Date.now();
      announcer.spoken.push(entry);
      announcer.current = null;
      busy = false;
      next();
    });
  }

  function soundOff(show) { el('[data-testid="sound-off"]').hidden = !show; }
  function enableSound() {
    var ctx = audioContext();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(function () {});
    soundOff(false);
  }
  document.addEventListener("keydown", enableSound);
  document.addEventListener("pointerdown", enableSound);

  // --- rendering -------------------------------------------------------------------------
  var calls = [];     // newest first: {seq, kind, ticket, counter}
  var lastAnnounced = null; // highest call seq announced (or known at the first snapshot)
  var queues = {};    // service code -> queue
  var queueOrder = [];

  function showNow(call, fresh) {
    body.classList.toggle("has-call", !!call);
    el('[data-testid="now-number"]').textContent = call ? call.ticket.number : "–";
    el('[data-testid="now-counter"]').textContent = call && call.counter ? call.counter.name : "";
    el('[data-testid="now-service"]').textContent = call ? serviceName(call.ticket.service) : "";
    if (fresh) {
      nowBody.classList.remove("is-new");
      void nowBody.offsetWidth; // restart the animation
      nowBody.classList.add("is-new");
    }
  }

  function renderCalls(fresh) {
    showNow(calls[0] || null, fresh);
    var list = el('[data-testid="recent"]');
    list.textContent = "";
    calls.slice(1, 1 + MAX_RECENT).forEach(function (c) {
      var li = document.createElement("li");
      li.dataset.seq = c.seq;
      var n = document.createElement("span");
      n.className = "d-n";
      n.textContent = c.ticket.number;
      if (c.kind === "recall") {
        var tag = document.createElement("span");
        tag.className = "d-tag";
        tag.textContent = S.recall;
        n.appendChild(tag);
      }
      var k = document.createElement("span");
      k.className = "d-c";
      k.textContent = c.counter ? c.counter.name : "";
      li.appendChild(n);
      li.appendChild(k);
      list.appendChild(li);
    });
  }

  // the estimator's range ("10-15 min"), as on the customer's phone: floor.js writes it in
  // the server's words (waits/present.py range_patterns)
  function waitText(q) {
    var text = QueueFloor.waitRange(q, S.wait_range);
    return text == null ? S.no_estimate : text;
  }

  function renderQueues() {
    var list = el('[data-testid="queues"]');
    list.textContent = "";
    list.dataset.count = queueOrder.length; // display.css lays the tiles out by their number
    queueOrder.forEach(function (code) {
      var q = queues[code];
      var li = document.createElement("li");
      li.dataset.service = code;
      var name = document.createElement("div");
      name.className = "d-q-name";
      name.textContent = serviceName(q);
      var count = document.createElement("div");
      count.className = "d-q-count";
      count.dataset.testid = "waiting-" + code;
      count.textContent = q.waiting === 1 ? S.waiting_one : fmt(S.waiting_many, { n: q.waiting });
      var wait = document.createElement("div");
      wait.className = "d-q-wait";
      wait.dataset.testid = "wait-" + code;
      wait.textContent = waitText(q);
      li.appendChild(name);
      li.appendChild(count);
      li.appendChild(wait);
      list.appendChild(li);
    });
  }

  var messages = [];
  var messageIndex = 0;
  function renderMessage() {
    var box = el('[data-testid="message"]');
    box.textContent = "";
    if (!messages.length) return;
    var m = messages[messageIndex % messages.length];
    if (m.image) {
      var img = document.createElement("img");
      img.src = m.image;
      img.alt = "";
      box.appendChild(img);
    } else {
      box.textContent = m.text;
    }
  }
  setInterval(function () { messageIndex += 1; renderMessage(); }, 12000);

  function onSnapshot(snap) {
    calls = (snap.calls || []).slice();
    var newest = calls.length ? calls[0].seq : 0;
    if (lastAnnounced === null) {
      lastAnnounced = newest; // what was called before the page opened is shown, not spoken
    } else {
      // calls made while this display was disconnected: shown, and the latest few announced
      var missed = calls.filter(function (c) { return c.seq > lastAnnounced; }).slice(0, MAX_CATCH_UP);
      missed.reverse().forEach(announce);
      lastAnnounced = Math.max(lastAnnounced, newest);
    }
    queues = {};
    queueOrder = [];
    (snap.services || []).forEach(function (q) { queues[q.code] = q; queueOrder.push(q.code); });
    messages = (snap.messages || []).map(function (t) { return { text: t }; })
      .concat((snap.images || []).map(function (u) { return { image: u }; }));
    renderCalls(false);
    renderQueues();
    renderMessage();
    body.dataset.seq = snap.seq;
  }

  function onChange(change) {
    (change.queues || []).forEach(function (q) {
      if (!queues[q.code]) queueOrder.push(q.code);
      queues[q.code] = q;
    });
    if ((change.kind === "called" || change.kind === "recall") && change.ticket) {
      var call = { seq: change.seq, kind: change.kind, ticket: change.ticket, counter: change.counter || change.ticket.counter };
      calls.unshift(call);
      calls = calls.slice(0, 1 + MAX_RECENT);
      renderCalls(true);
      if (lastAnnounced === null || call.seq > lastAnnounced) {
        lastAnnounced = call.seq;
        announce(call);
      }
    }
    if (change.queues && change.queues.length) renderQueues();
    body.dataset.seq = change.seq;
  }

  var statusBox = el('[data-testid="status"]');
  var refusedTimer = null;
  function onStatus(state) {
    statusBox.dataset.state = state;
    statusBox.querySelector(".d-status-text").textContent =
      state === "online" ? S.online : state === "refused" ? S.refused : state === "offline" ? S.offline : "";
    // a display that is no longer paired shows the pairing screen: reload once in a while
    clearTimeout(refusedTimer);
    if (state === "refused") refusedTimer = setTimeout(function () { location.reload(); }, 30000);
  }

  // --- clock in the branch's time zone ----------------------------------------------------
  var clock = el('[data-testid="clock"]');
  var clockFormat = new Intl.DateTimeFormat(LANG_TAGS[config.locale] || config.locale, {
    hour: "2-digit", minute: "2-digit", timeZone: config.timezone,
  });
  function tick() { clock.textContent = clockFormat.format(new Date()); }
  tick();
  setInterval(tick, 1000);

  if (window.speechSynthesis) window.speechSynthesis.getVoices(); // start loading the voices

  window.queueDisplay = QueueFloor.connect({
    auth: { device: "display" },
    branch: config.branch,
    onSnapshot: onSnapshot,
    onChange: onChange,
    onStatus: onStatus,
  });
})();
