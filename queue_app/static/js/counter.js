/* The counter screen. Renders from the JSON state of GET .../state (embedded in the page for
 * the first paint), posts every action with fetch and renders the state the answer carries.
 * Realtime change events (QueueFloor, static/js/floor.js) are hints: a change that concerns
 * this counter makes the page read the state again, except a ticket joining or leaving its
 * waiting list, applied from the push. Without them, or while disconnected, the page polls. */
(function () {
  "use strict";

  var root = document.getElementById("counter-app");
  if (!root) return;
  var T = JSON.parse(document.getElementById("cs-i18n").textContent);
  var state = JSON.parse(document.getElementById("cs-initial").textContent);
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var stateUrl = root.dataset.stateUrl;
  var actionBase = root.dataset.actionUrl; // ends with "/"
  var POLL_OFFLINE_MS = 5000;
  var POLL_LIVE_MS = 30000;
  var clockOffset = null; // server time - browser time, ms
  var sentAt = Date.now(); // when the request whose answer is rendered next was sent
  var busy = false;
  var live = false;
  var pollTimer = null;
  var refreshTimer = null;
  var inFlight = 0; // reads of the state on their way
  var lastSeq = null; // the branch's journal number the state shown is true at
  var quiet = {}; // numbers heard above lastSeq that leave the state as it is (or were applied)

  function $(id) { return document.getElementById(id); }
  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "className") node.className = attrs[k];
        else if (k.slice(0, 5) === "data-") node.setAttribute(k, attrs[k]);
        else node[k] = attrs[k];
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  // --- time ---------------------------------------------------------------------------
  function syncClock(nowIso) {
    // the server read its clock somewhere between sending and receiving: take the middle, and
    // follow only real differences, so that ticking times never jump back by a round trip
    if (!nowIso) return;
    var offset = Date.parse(nowIso) - (sentAt + Date.now()) / 2;
    if (clockOffset === null || Math.abs(offset - clockOffset) > 2000) clockOffset = offset;
  }
  function elapsed(sinceIso) {
    var s = Math.max(0, Math.floor((Date.now() + (clockOffset || 0) - Date.parse(sinceIso)) / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return h + " " + T.hours_short + " " + (m < 10 ? "0" : "") + m + " " + T.minutes_short;
    if (m) return m + " " + T.minutes_short + " " + (sec < 10 ? "0" : "") + sec + " " + T.seconds_short;
    return sec + " " + T.seconds_short;
  }
  function tick() {
    var nodes = root.querySelectorAll("[data-since]");
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      var text = elapsed(n.getAttribute("data-since"));
      var tpl = n.getAttribute("data-template");
      n.textContent = tpl ? fmt(tpl, { time: text }) : text;
    }
  }

  // --- rendering ----------------------------------------------------------------------
  function badge(text, cls) { return el("span", { className: "cs-badge " + cls, text: text }); }

  function ticketBadges(t) {
    var out = [];
    if (t.priority && t.priority !== "normal") out.push(badge(T.priority[t.priority] || t.priority, "cs-badge-prio"));
    if (t.targeted) out.push(badge(T.targeted, "cs-badge-target"));
    if (t.transferred) out.push(badge(T.transferred, "cs-badge-transfer"));
    if (t.appointment_due_at) out.push(badge(T.appointment, "cs-badge-appt"));
    return out;
  }

  function canAct() {
    return state.counter.can_operate;
  }
  function counterOpen() {
    return state.counter.status === "open";
  }

  function renderStatus() {
    var c = state.counter;
    var pill = $("cs-counter-status");
    pill.textContent = T.counter_status[c.status] + (c.status === "paused" && c.pause_reason ? " · " + c.pause_reason : "");
    pill.className = "cs-pill cs-" + c.status;
    root.querySelector(".cs-staff").textContent = c.staff || "";
  }

  function renderBanner() {
    var c = state.counter, text = "";
    if (!c.can_operate) text = fmt(T.operated_by, { name: c.staff || "" });
    else if (c.status === "closed") text = T.not_open;
    else if (c.status === "paused") text = T.paused_hint;
    var b = $("cs-banner");
    b.textContent = text;
    b.hidden = !text;
  }

  function renderTicket() {
    var box = $("cs-ticket"), t = state.active;
    box.textContent = "";
    if (!t) {
      box.appendChild(el("p", { className: "cs-empty", text: T.no_ticket }));
      if (counterOpen() && canAct()) box.appendChild(el("p", { className: "cs-muted", text: T.no_ticket_hint }));
      return;
    }
    var head = el("div", { className: "cs-ticket-head" }, [
      el("span", { className: "cs-number", text: t.number, "data-testid": "current-number" }),
      el("div", { className: "cs-ticket-meta" }, [
        el("span", { className: "cs-pill cs-t-" + t.status, text: T.status[t.status], "data-testid": "current-status" }),
        el("span", { className: "cs-ticket-service", text: t.service }),
      ].concat(ticketBadges(t))),
    ]);
    box.appendChild(head);
    var times = el("p", { className: "cs-times" });
    if (t.status === "serving" && t.started_at) {
      times.appendChild(el("span", { "data-since": t.started_at, "data-template": T.serving_for }));
    } else if (t.last_called_at) {
      times.appendChild(el("span", { "data-since": t.last_called_at, "data-template": T.called_ago }));
    }
    box.appendChild(times);
    if (t.status === "called") {
      var limit = state.branch.recall_limit;
      var recall = el("p", { className: "cs-recalls", "data-testid": "recalls" }, [
        fmt(T.recalls, { count: t.recall_count, limit: limit }),
      ]);
      if (t.recall_count >= limit) {
        recall.appendChild(document.createTextNode(" "));
        recall.appendChild(el("strong", { text: T.recall_last }));
      }
      box.appendChild(recall);
    }
    if (t.handover_note) {
      box.appendChild(el("p", { className: "cs-handover", "data-testid": "current-handover" }, [
        el("strong", { text: T.handover + " " }), t.handover_note,
      ]));
    }
  }

  function renderHeld() {
    var list = $("cs-held");
    list.textContent = "";
    state.held.forEach(function (t) {
      var resume = el("button", { type: "button", className: "cs-btn cs-btn-small", text: T.resume, "data-testid": "resume-" + t.number });
      resume.disabled = busy || !canAct();
      resume.addEventListener("click", function () { ticketAction(t.id, "resume"); });
      var cancel = el("button", { type: "button", className: "cs-btn cs-btn-small cs-btn-warn", text: T.cancel });
      cancel.disabled = busy || !canAct();
      cancel.addEventListener("click", function () {
        if (window.confirm(fmt(T.confirm_cancel, { number: t.number }))) ticketAction(t.id, "cancel");
      });
      list.appendChild(el("li", { className: "cs-item" }, [
        el("span", { className: "cs-item-number", text: t.number }),
        el("span", { className: "cs-item-service", text: t.service }),
        t.notes ? el("span", { className: "cs-item-note", text: t.notes }) : null,
        el("span", { className: "cs-item-actions" }, [resume, cancel]),
      ]));
    });
    $("cs-held-wrap").hidden = state.held.length === 0;
  }

  function renderWaiting() {
    var box = $("cs-waiting");
    box.textContent = "";
    $("cs-waiting-count").textContent = "(" + state.waiting_count + ")";
    var callable = counterOpen() && canAct() && !state.active && !busy;
    state.waiting.forEach(function (group) {
      if (group.key === "targeted" && group.tickets.length === 0) return;
      var title = group.service === null ? T.targeted : group.service;
      var section = el("div", { className: "cs-group", "data-group": group.key }, [
        el("h3", {}, [title + " ", el("span", { className: "cs-count", text: "(" + group.tickets.length + ")" })]),
      ]);
      if (!group.tickets.length) {
        section.appendChild(el("p", { className: "cs-muted", text: T.nobody_waiting }));
      } else {
        var list = el("ul", { className: "cs-list" });
        group.tickets.forEach(function (t) {
          var call = el("button", { type: "button", className: "cs-btn cs-btn-small", text: T.call, "data-testid": "call-" + t.number });
          call.disabled = !callable;
          call.setAttribute("aria-label", T.call + " " + t.number);
          call.addEventListener("click", function () { ticketAction(t.id, "call"); });
          var item = el("li", { className: "cs-item", "data-ticket": t.number }, [
            el("span", { className: "cs-item-number", text: t.number }),
            el("span", { className: "cs-item-wait" }, [
              el("span", { "data-since": t.issued_at, text: elapsed(t.issued_at) }),
            ]),
            el("span", { className: "cs-item-badges" }, ticketBadges(t)),
            el("span", { className: "cs-item-actions" }, [call]),
          ]);
          if (t.handover_note) {
            item.appendChild(el("span", { className: "cs-item-note" }, [el("strong", { text: T.handover + " " }), t.handover_note]));
          }
          list.appendChild(item);
        });
        section.appendChild(list);
      }
      box.appendChild(section);
    });
  }

  function renderCustomer() {
    var box = $("cs-customer-body"), c = state.customer;
    box.textContent = "";
    if (!state.active) {
      box.appendChild(el("p", { className: "cs-muted", text: T.customer_hint }));
      return;
    }
    if (!c) {
      box.appendChild(el("p", { className: "cs-muted", text: T.anonymous }));
      return;
    }
    var who = el("dl", { className: "cs-who" });
    [[T.name, c.name, "name"], [T.phone, c.phone, "phone"], [T.customer_number, c.number, "number"]].forEach(function (row) {
      if (!row[1]) return;
      who.appendChild(el("div", {}, [el("dt", { text: row[0] }), el("dd", { text: row[1], "data-testid": "customer-" + row[2] })]));
    });
    box.appendChild(who);
    box.appendChild(el("h3", { text: T.history }));
    var visits = el("ol", { className: "cs-history", "data-testid": "history" });
    c.visits.forEach(function (v) {
      var steps = el("ul", { className: "cs-steps" });
      v.steps.forEach(function (s) {
        var line = [s.number + " · " + s.service + " · " + T.status[s.status]];
        if (s.staff) line.push(" · " + fmt(T.served_by, { name: s.staff }) + (s.counter ? " (" + s.counter + ")" : ""));
        var li = el("li", {}, line);
        if (s.outcome) li.appendChild(el("div", {}, [el("strong", { text: T.outcome + " " }), s.outcome]));
        if (s.notes) li.appendChild(el("div", {}, [el("strong", { text: T.notes + " " }), s.notes]));
        if (s.handover_note) li.appendChild(el("div", {}, [el("strong", { text: T.handover + " " }), s.handover_note]));
        steps.appendChild(li);
      });
      visits.appendChild(el("li", {}, [
        el("div", { className: "cs-visit-head" }, [el("strong", { text: v.date }), " · " + v.branch_name + " (" + v.branch + ")"]),
        steps,
      ]));
    });
    if (!c.visits.length) box.appendChild(el("p", { className: "cs-muted", text: T.no_history }));
    else box.appendChild(visits);
    // ratings and cases come with the feedback and case domains; until then both lists are empty
    box.appendChild(el("h3", { text: T.ratings }));
    box.appendChild(el("p", { className: "cs-muted", "data-testid": "ratings", text: c.ratings.length ? "" : T.no_ratings }));
    box.appendChild(el("h3", { text: T.cases }));
    box.appendChild(el("p", { className: "cs-muted", "data-testid": "cases", text: c.cases.length ? "" : T.no_cases }));
  }

  function enable(action, on) {
    var btn = root.querySelector('[data-action="' + action + '"]');
    if (btn) btn.disabled = busy || !on;
  }

  function renderButtons() {
    var c = state.counter, t = state.active, s = t ? t.status : null, op = canAct();
    enable("open", op && c.status !== "open");
    enable("pause", op && c.status === "open" && !t);
    enable("close", op && c.status !== "closed" && !t);
    enable("call-next", op && c.status === "open" && !t);
    enable("recall", op && s === "called");
    enable("start", op && s === "called");
    enable("finish", op && s === "serving");
    enable("transfer", op && (s === "called" || s === "serving"));
    enable("hold", op && (s === "called" || s === "serving"));
    enable("no-show", op && s === "called");
    enable("cancel", op && s === "called");
  }

  function render() {
    syncClock(state.now);
    renderStatus();
    renderBanner();
    renderTicket();
    renderHeld();
    renderWaiting();
    renderCustomer();
    renderButtons();
    tick();
  }

  // --- talking to the server ----------------------------------------------------------
  var toastTimer = null;
  function toast(message) {
    var t = $("cs-toast");
    t.textContent = message || "";
    clearTimeout(toastTimer);
    if (message) toastTimer = setTimeout(function () { t.textContent = ""; }, 6000);
  }
  $("cs-error").addEventListener("click", function () { showError(""); });
  function showError(message, where) {
    var box = where || $("cs-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function request(method, url, body) {
    var headers = { Accept: "application/json" };
    var started = Date.now();
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrf;
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      sentAt = started;
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok && data) return data;
        var message = data && data.error && data.error.message;
        if (!message) message = response.status >= 500 ? T.server_error : T.network_error;
        var err = new Error(message);
        err.status = response.status;
        throw err;
      });
    }, function () {
      throw new Error(T.network_error);
    });
  }

  function post(path, body, errorBox) {
    if (busy) return Promise.resolve(false);
    busy = true;
    renderButtons();
    showError("");
    return request("POST", actionBase + path, body || {}).then(function (data) {
      busy = false;
      adopt(data.state);
      advance();
      render();
      toast(data.message);
      return true;
    }, function (err) {
      busy = false;
      showError(err.message, errorBox);
      if (errorBox) showError("");
      renderButtons();
      refreshSoon(0);
      return false;
    });
  }

  function ticketAction(ticketId, action, body, errorBox) {
    return post("tickets/" + ticketId + "/" + action, body, errorBox);
  }

  // Answers overtake each other on separate connections: a read sent before an action can
  // come back after the action's answer. The branch's journal number orders them; an answer
  // older than the state shown is dropped (a started ticket would otherwise show as called).
  function adopt(next) {
    if (state && typeof state.seq === "number" && next.seq < state.seq) return false;
    state = next;
    lastSeq = next.seq;
    return true;
  }

  function refresh() {
    inFlight += 1;
    return request("GET", stateUrl).then(function (data) {
      inFlight -= 1;
      if (adopt(data) && !busy) render();
      advance();
    }, function (err) {
      inFlight -= 1;
      if (err.status === 401 || err.status === 403) showError(err.message);
    });
  }
  function refreshSoon(delay) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      refresh();
    }, delay === undefined ? 150 : delay);
  }
  function reading() { return refreshTimer !== null || inFlight > 0; }

  // The state stays true through change `seq` (it does not concern this counter, or it was
  // applied): move lastSeq over every such number that follows it without a gap. Not while a
  // read is on its way: its answer, older than those numbers, would be dropped.
  function advance() {
    if (lastSeq === null || reading() || busy) return;
    while (quiet[lastSeq + 1]) {
      lastSeq += 1;
      state.seq = lastSeq;
    }
    Object.keys(quiet).forEach(function (k) { if (+k <= lastSeq) delete quiet[k]; });
  }
  function note(seq) {
    quiet[seq] = true;
    advance();
  }

  // The two changes of the waiting list that every screen of a service hears most, applied
  // from the push itself instead of a read: a ticket that leaves it (called at another
  // counter, cancelled) and a walk-in that joins it (issued, neither sent to a counter,
  // transferred nor booked; placed by when it joined, as the server orders the list). Only
  // on a state true up to the change before it; anything else is read.
  function findWaiting(id) {
    for (var g = 0; g < state.waiting.length; g++) {
      var list = state.waiting[g].tickets;
      for (var i = 0; i < list.length; i++) if (list[i].id === id) return { list: list, index: i };
    }
    return null;
  }
  function applyChange(event) {
    var t = event.ticket;
    if (busy || reading() || lastSeq === null || event.seq !== lastSeq + 1) return false;
    if (!t || typeof t.id !== "number") return false;
    if (atThisCounter(event)) return false; // what happens here changes more than the list
    var at = findWaiting(t.id);
    if (event.from_status === "waiting" && t.status !== "waiting") {
      if (!at) return false;
      at.list.splice(at.index, 1);
      state.waiting_count -= 1;
      return true;
    }
    if (event.kind !== "issued" || t.status !== "waiting" || at) return false;
    if (t.target_counter_id || t.transferred || t.source === "appointment" || !t.waiting_since) return false;
    var group = null;
    state.waiting.forEach(function (g) { if (g.code && t.service && g.code === t.service.code) group = g; });
    if (!group) return false;
    var item = {
      id: t.id, number: t.number, status: "waiting", service_id: group.service_id,
      service: group.service, priority: t.priority, targeted: false, transferred: false,
      handover_note: null, notes: null, issued_at: t.issued_at, queue_since: t.waiting_since,
      called_at: null, last_called_at: null, started_at: null, recall_count: 0,
      appointment_due_at: null,
    };
    var k = group.tickets.length;
    while (k > 0 && later(group.tickets[k - 1], item)) k -= 1;
    group.tickets.splice(k, 0, item);
    state.waiting_count += 1;
    return true;
  }
  function later(a, b) { // a joined after b (the server's order: queue_since, then id)
    var ta = Date.parse(a.queue_since), tb = Date.parse(b.queue_since);
    return ta > tb || (ta === tb && a.id > b.id);
  }
  function schedulePoll() {
    clearInterval(pollTimer);
    pollTimer = setInterval(refresh, live ? POLL_LIVE_MS : POLL_OFFLINE_MS);
  }

  // --- actions and dialogs ------------------------------------------------------------
  function openDialog(id) {
    var dlg = $(id);
    var form = dlg.querySelector("form");
    form.reset();
    var err = form.querySelector('[data-slot="error"]');
    if (err) showError("", err);
    var slot = form.querySelector('[data-slot="number"]');
    if (slot) slot.textContent = state.active ? state.active.number : "";
    if (id === "cs-dlg-transfer") fillTransfer(form);
    dlg.showModal();
    var first = form.querySelector("select, input, textarea");
    if (first) first.focus();
  }

  function fillTransfer(form) {
    var services = form.querySelector('[name="service"]');
    var counters = form.querySelector('[name="counter_id"]');
    while (services.options.length > 1) services.remove(1);
    while (counters.options.length > 1) counters.remove(1);
    state.transfer.services.forEach(function (s) { services.add(new Option(s.name, s.code)); });
    state.transfer.counters.forEach(function (c) {
      counters.add(new Option(c.name + " (" + T.counter_status[c.status] + ")", String(c.id)));
    });
    form.querySelector('[name="keep_place"]').checked = !!state.branch.transfer_keeps_place;
  }

  function submitDialog(form) {
    var kind = form.getAttribute("data-submit");
    var data = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name) return;
      data[field.name] = field.type === "checkbox" ? field.checked : field.value;
    });
    var errBox = form.querySelector('[data-slot="error"]');
    var done;
    if (kind === "pause") done = post("pause", data, errBox);
    else if (!state.active) done = Promise.resolve(false);
    else done = ticketAction(state.active.id, kind, data, errBox);
    done.then(function (ok) { if (ok) form.closest("dialog").close(); });
  }

  Array.prototype.forEach.call(root.querySelectorAll("dialog form"), function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!form.reportValidity()) return;
      submitDialog(form);
    });
    form.querySelector("[data-close]").addEventListener("click", function () {
      form.closest("dialog").close();
    });
  });

  function run(action) {
    var t = state.active;
    switch (action) {
      case "open": return post("open");
      case "close": return post("close");
      case "call-next": return post("call-next");
      case "pause": return openDialog("cs-dlg-pause");
      case "finish": return openDialog("cs-dlg-finish");
      case "transfer": return openDialog("cs-dlg-transfer");
      case "recall":
      case "start":
      case "hold":
        return t && ticketAction(t.id, action);
      case "no-show":
        if (t && window.confirm(fmt(T.confirm_no_show, { number: t.number }))) ticketAction(t.id, "no-show");
        return;
      case "cancel":
        if (t && window.confirm(fmt(T.confirm_cancel, { number: t.number }))) ticketAction(t.id, "cancel");
        return;
    }
  }

  Array.prototype.forEach.call(root.querySelectorAll("[data-action]"), function (btn) {
    btn.addEventListener("click", function () { run(btn.getAttribute("data-action")); });
  });

  var KEYS = { n: "call-next", r: "recall", s: "start", f: "finish", h: "hold", t: "transfer", p: "pause" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    if (root.querySelector("dialog[open]")) return;
    var action = KEYS[(event.key || "").toLowerCase()];
    if (!action) return;
    var btn = root.querySelector('[data-action="' + action + '"]');
    if (!btn || btn.disabled) return;
    event.preventDefault();
    run(action);
  });

  // --- realtime -----------------------------------------------------------------------
  function setConnection(kind) {
    var c = $("cs-conn");
    c.textContent = T[kind] || "";
    c.className = "cs-conn cs-conn-" + kind;
    var wasLive = live;
    live = kind === "live";
    if (wasLive !== live) schedulePoll();
  }

  // A change of the branch is read again only when it can change what this screen shows:
  // this counter's, a ticket at it, a counter serving one of its services opening or closing
  // (a change's `queues` are the services whose queue it moved, docs/realtime.md), and a
  // ticket joining or leaving the waiting list this counter calls from (its services, or sent
  // to it). A ticket recalled, started or finished at another counter and an estimate change
  // nothing here. Every screen of the branch hears every change: without this, six screens
  // read their whole state after each step of every visit. The 30 s poll and every snapshot
  // still read it.
  function atThisCounter(event) { // a change of this counter, or of a ticket at it
    var me = state.counter.id, t = event.ticket;
    return !!((event.counter && event.counter.id === me) || (t && t.counter && t.counter.id === me));
  }
  function concernsThisCounter(event) {
    var me = state.counter;
    if (!event || !me) return true;
    if (event.kind === "estimate") return false; // this screen shows no estimate
    var t = event.ticket;
    if (!t && !event.counter) return true; // nothing to tell it by: read
    if (atThisCounter(event)) return true;
    var codes = me.service_codes || [];
    var mine = (event.queues || []).some(function (q) { return codes.indexOf(q.code) !== -1; });
    if (!t) return mine;
    if (event.from_status !== "waiting" && t.status !== "waiting") return false;
    if (t.target_counter_id) return t.target_counter_id === me.id;
    return mine;
  }

  function connectRealtime() {
    if (!window.QueueFloor || typeof window.QueueFloor.connect !== "function") {
      setConnection("offline");
      return;
    }
    setConnection("reconnecting");
    window.QueueFloor.connect({
      auth: { branch: root.dataset.branch },
      branch: root.dataset.branch,
      onSnapshot: function () { refreshSoon(0); },
      onChange: function (event) {
        if (!event || typeof event.seq !== "number") { refreshSoon(); return; }
        if (lastSeq !== null && event.seq <= lastSeq) return;
        if (!concernsThisCounter(event)) { note(event.seq); return; }
        if (applyChange(event)) {
          note(event.seq);
          renderWaiting(); // the clock keeps its offset: no answer of the server came with it
          renderButtons();
          tick();
          return;
        }
        refreshSoon();
      },
      onStatus: function (status) {
        var s = typeof status === "string" ? status : status && (status.state || status.status);
        // floor.js says "connecting" | "online" | "offline" | "refused" (docs/realtime.md)
        if (s === "online") setConnection("live");
        else if (s === "connecting") setConnection("reconnecting");
        else setConnection("offline");
      },
    });
  }

  lastSeq = state.seq;
  render();
  setInterval(tick, 500); // twice a second: no second is skipped when a timer runs late
  schedulePoll();
  connectRealtime();
  window.CounterScreen = { refresh: refresh, state: function () { return state; } };
})();
