/* QueueDashboard: keeps a dashboard page fresh (docs/realtime.md, "dashboard" audience).
 *
 *   QueueDashboard.start({live: "*" | "JKT01", stateUrl: "/dashboard/state.json", refreshMs: 30000});
 *
 * The dashboard pages call it themselves with the JSON of `<script type="application/json"
 * id="dashboard-config">` (templates/dashboard/_scripts.html).
 *
 * Events are hints, the database is the truth: the page joins the Socket.IO `dashboard`
 * audience (the server decides its rooms from who is signed in) and, on every hint, refetches
 * the page's JSON state and swaps the regions (`[data-region]`) for the HTML the server
 * rendered with it. It also refetches on every (re)connect and every `refreshMs`, so a missed
 * hint costs at most that long. Refetches are spaced at least MIN_GAP_MS apart; a hint whose
 * `seq` the page has already seen is ignored. A region holding the keyboard focus (someone
 * typing an acknowledgement note) is left alone until focus leaves it.
 *
 * Test hook: window.queueDashboard = {fetches, hints, status, lastState}.
 */
(function (global) {
  "use strict";

  var MIN_GAP_MS = 1000;

  function start(options) {
    var opts = options || {};
    var doc = global.document;
    var hook = { fetches: 0, hints: 0, status: "connecting", lastState: null, seqs: {} };
    global.queueDashboard = hook;
    var inFlight = false;
    var again = false;
    var lastFetch = 0;
    var timer = null;
    var deferred = {};

    function setStatus(state) {
      hook.status = state;
      var box = doc.querySelector("[data-testid=live-status]");
      if (!box) return;
      box.setAttribute("data-state", state);
      var text = box.querySelector(".dash-live-text");
      if (text) text.textContent = text.getAttribute("data-text-" + state) || text.textContent;
    }

    function swap(name, html) {
      var region = doc.querySelector('[data-region="' + name + '"]');
      if (!region) return;
      if (region.contains(doc.activeElement) && doc.activeElement !== doc.body) {
        deferred[name] = html; // someone is typing here: later
        return;
      }
      delete deferred[name];
      // keep open <details> open across the swap
      var open = [];
      region.querySelectorAll("details[open] > summary").forEach(function (s) { open.push(s.textContent); });
      region.innerHTML = html;
      region.querySelectorAll("details > summary").forEach(function (s) {
        if (open.indexOf(s.textContent) >= 0) s.parentNode.open = true;
      });
    }

    doc.addEventListener("focusout", function () {
      setTimeout(function () {
        Object.keys(deferred).forEach(function (name) { swap(name, deferred[name]); });
      }, 0);
    });

    function remember(state) {
      var rows = state.branches || (state.branch ? [state.branch] : []);
      rows.forEach(function (b) { hook.seqs[b.id] = b.seq; });
    }

    var leaving = false;
    doc.addEventListener("submit", function () { leaving = true; }); // the page goes: no refetch

    function fetchState() {
      if (leaving) return;
      if (inFlight) { again = true; return; }
      var wait = lastFetch + MIN_GAP_MS - Date.now();
      if (wait > 0) {
        if (!timer) timer = setTimeout(function () { timer = null; fetchState(); }, wait);
        return;
      }
      inFlight = true;
      lastFetch = Date.now();
      hook.fetches += 1;
      global.fetch(opts.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401 || r.status === 403 || r.redirected) { global.location.reload(); return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (state) {
          if (!state) return;
          hook.lastState = state;
          remember(state);
          Object.keys(state.html || {}).forEach(function (name) { swap(name, state.html[name]); });
        })
        .catch(function () { /* the next hint or the periodic refresh tries again */ })
        .then(function () {
          inFlight = false;
          if (again) { again = false; fetchState(); }
        });
    }

    function onHint(hint) {
      hook.hints += 1;
      if (hint && hint.kind === "journey" && typeof hint.seq === "number" &&
          typeof hook.seqs[hint.branch_id] === "number" && hint.seq <= hook.seqs[hint.branch_id]) {
        return; // already in what we show
      }
      fetchState();
    }

    setInterval(fetchState, opts.refreshMs || 30000);

    if (typeof global.io !== "function") { setStatus("offline"); return hook; }
    var socket = global.io("/floor", {
      auth: { dashboard: opts.live || "*" },
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
    });
    hook.socket = socket;
    socket.on("connect", function () { setStatus("online"); fetchState(); });
    socket.on("snapshot", function () { /* connected: the state is fetched on connect */ });
    socket.on("change", onHint);
    socket.on("disconnect", function () { setStatus("offline"); });
    socket.on("connect_error", function () { setStatus("offline"); });
    return hook;
  }

  global.QueueDashboard = { start: start };

  // the page's settings come as JSON (#dashboard-config): no inline script under the CSP
  var config = global.document.getElementById("dashboard-config");
  if (config) start(JSON.parse(config.textContent));
})(window);
