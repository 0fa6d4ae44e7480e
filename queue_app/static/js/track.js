/* The customer's tracking page (templates/mobile/track.html): follows one ticket live.
 *
 * The page is complete without this script (the server renders it and it reloads itself);
 * here it is kept up to date over the /floor namespace through QueueFloor (floor.js), which
 * applies the snapshot/gap/reconnect rule. When the ticket is called the page says so loudly:
 * the whole screen changes colour, the phone vibrates, a chime plays (Web Audio) and the tab's
 * title names the counter. Test hook: window.queueTrack {floor, ticket, alerts, sound}.
 */
(function () {
  "use strict";

  var dataNode = document.getElementById("track-data");
  var root = document.getElementById("track");
  if (!dataNode || !root || !window.QueueFloor) return;
  var data = JSON.parse(dataNode.textContent);
  var texts = data.texts;
  var awaitingArrival = !!data.awaiting_arrival;
  var baseTitle = document.title;
  var ACTIVE = { waiting: 1, called: 1, serving: 1, held: 1 };
  var LEAVABLE = { waiting: 1 };

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function fill(pattern, values) {
    return pattern.replace(/%\((\w+)\)s/g, function (_m, key) { return values[key] == null ? "" : values[key]; });
  }
  // the estimator's range ("10-15 min"): written by floor.js, in the server's words
  function waitText(ticket) {
    var text = window.QueueFloor.waitRange(ticket, texts.wait_range);
    return text == null ? texts.wait_unknown : text;
  }

  var hook = {
    floor: null,
    ticket: data.ticket,
    alerts: [],          // one entry per call shown loudly: {number, counter, recall, at, vibrated, chimed}
    sound: "locked",     // "locked" until a tap lets the page play sound, then "on"
  };
  window.queueTrack = hook;

  // --- sound ------------------------------------------------------------------------------
  var audio = null;
  var soundButton = field("sound");
  function audioContext() {
    if (!audio) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
    }
    return audio;
  }
  function unlockSound() {
    var ctx = audioContext();
    if (!ctx) return;
    ctx.resume().then(function () {
      hook.sound = ctx.state === "running" ? "on" : "locked";
      if (soundButton) soundButton.hidden = hook.sound === "on" || !ACTIVE[hook.ticket.status];
    }).catch(function () {});
  }
  function chime() {
    var ctx = audioContext();
    if (!ctx) return "no-audio";
    if (ctx.state === "suspended") ctx.resume().catch(function () {});
    var t = ctx.currentTime + 0.05;
    // three rising tones, twice: hard to miss in a busy hall
    [[660, 0], [880, 0.25], [1100, 0.5], [660, 1.2], [880, 1.45], [1100, 1.7]].forEach(function (tone) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, t + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.6, t + tone[1] + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + tone[1] + 0.4);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t + tone[1]);
      osc.stop(t + tone[1] + 0.45);
    });
    return ctx.state;
  }
  if (soundButton) {
    soundButton.hidden = !ACTIVE[data.ticket.status];
    soundButton.addEventListener("click", unlockSound);
  }
  // any tap on the page counts as the gesture browsers want before a page may play sound
  document.addEventListener("pointerdown", function () { if (hook.sound !== "on") unlockSound(); }, { passive: true });

  // --- the call, loudly ------------------------------------------------------------------
  function alertCall(ticket) {
    var counter = ticket.counter ? ticket.counter.name : "";
    var vibrated = false;
    try { vibrated = !!(navigator.vibrate && navigator.vibrate([500, 200, 500, 200, 900])); } catch (e) { vibrated = false; }
    var chimed = chime();
    hook.alerts.push({
      number: ticket.number, counter: counter, recall: ticket.recall_count || 0,
      at: Date.now(), vibrated: vibrated, chimed: chimed,
    });
    var status = root.querySelector(".track-status");
    if (status && status.focus) { status.setAttribute("tabindex", "-1"); status.focus(); }
  }

  // --- render ----------------------------------------------------------------------------
  function render(ticket) {
    var before = hook.ticket || {};
    hook.ticket = ticket;
    var status = ticket.status;
    root.className = root.className.replace(/\bstate-\S+/g, "").trim() + " state-" + status;
    root.setAttribute("data-status", status);
    document.documentElement.setAttribute("data-track-status", status);

    // a remote ticket still to be confirmed that is cancelled now was not confirmed in time
    // (leaving from this page reloads it: the server says which it was)
    field("status-text").textContent =
      status === "cancelled" && awaitingArrival ? texts.expired : texts.status[status] || "";
    var counter = field("counter");
    var name = ticket.counter ? ticket.counter.name : null;
    if (name && status === "called") {
      counter.textContent = fill(texts.go_to, { counter: name });
      counter.hidden = false;
    } else if (name && status === "serving") {
      counter.textContent = fill(texts.served_at, { counter: name });
      counter.hidden = false;
    } else {
      counter.hidden = true;
    }

    var facts = field("facts");
    facts.hidden = status !== "waiting";
    if (status === "waiting") {
      var pos = ticket.position;
      field("ahead").textContent = pos == null ? "–" : pos <= 1 ? texts.ahead_none : String(pos - 1);
      field("wait").textContent = waitText(ticket);
    }
    var arrival = field("arrival");
    if (arrival) arrival.hidden = status !== "waiting";
    var leave = field("leave");
    if (leave) leave.hidden = !LEAVABLE[status];
    if (soundButton && !ACTIVE[status]) soundButton.hidden = true;

    document.title = status === "called" && name
      ? fill(texts.called_title, { number: ticket.number, counter: name })
      : baseTitle;

    var newCall = status === "called" &&
      (before.status !== "called" || (ticket.recall_count || 0) > (before.recall_count || 0));
    if (newCall) alertCall(ticket);

    if (status === "transferred") {
      // the visit goes on as a new step: the server page shows it
      setTimeout(function () { window.location.reload(); }, 1500);
    }
    if (!ACTIVE[status] && hook.floor) {
      hook.floor.close();
      live("");
    }
  }

  function live(text) {
    var node = field("live");
    node.textContent = text;
    node.hidden = !text;
  }

  hook.render = render;
  hook.floor = window.QueueFloor.connect({
    auth: { ticket: data.token },
    branch: data.branch,
    onSnapshot: function (snap) { if (snap.ticket) render(snap.ticket); },
    onChange: function (change) {
      if (change.self && change.kind === "arrived") {
        awaitingArrival = false;
        var arrival = field("arrival");
        if (arrival) arrival.remove();
      }
      if (change.self && change.kind === "moved_back") {
        var moved = field("moved-back");
        if (moved) moved.hidden = false;
      }
      if (change.ticket) render(change.ticket);
    },
    onStatus: function (state) {
      if (!ACTIVE[hook.ticket.status]) return;
      live(state === "online" ? texts.online : state === "refused" ? texts.refused : state === "offline" ? texts.offline : "");
      root.setAttribute("data-connection", state);
    },
  });
  // the server render already counts as the state we have: a call already on screen when
  // the page opens is shown, and announced once when the first snapshot confirms it
  if (data.ticket.status === "called") hook.ticket = { status: "waiting" };
})();
