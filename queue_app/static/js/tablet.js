/* The feedback tablet at a counter (templates/feedback/tablet.html).
 *
 * Idle until the counter finishes a served visit step: the survey arrives as a Socket.IO
 * push (`change` with a `survey`, room feedback:<branch>:<counter>) and, because events are
 * hints and the database is the truth, from the state endpoint polled every few seconds.
 * At most three steps (the server chose them); a tap on a score moves on, the last answer
 * sends. "Thank you", then idle again; an untouched survey goes back to idle by itself.
 * A survey answered or dropped is never shown again (its key is remembered); a double tap
 * never sends twice (and a 409 already_rated from the server reads as thanks).
 * No framework; window.queueTablet exposes the state for tests.
 */
(function () {
  "use strict";
  var body = document.body;
  var STR = JSON.parse(document.getElementById("tablet-strings").textContent);
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var cfg = {
    stateUrl: body.getAttribute("data-state-url"),
    rateUrl: body.getAttribute("data-rate-url"),
    thanksMs: parseInt(body.getAttribute("data-thanks-ms"), 10) || 8000,
    idleMs: parseInt(body.getAttribute("data-idle-ms"), 10) || 60000,
    pollMs: parseInt(body.getAttribute("data-poll-ms"), 10) || 3000,
  };
  var SCALES = { nps: [0, 10], csat: [1, 5], ces: [1, 5] };
  var ADVANCE_MS = 250; // the tapped score lights up before the next question

  var screens = {};
  Array.prototype.forEach.call(document.querySelectorAll("[data-screen]"), function (el) {
    screens[el.getAttribute("data-screen")] = el;
  });
  var els = {
    visit: document.querySelector('[data-testid="visit"]'),
    progress: document.querySelector('[data-testid="progress"]'),
    question: document.querySelector('[data-testid="question"]'),
    answers: document.querySelector('[data-testid="answers"]'),
    error: document.querySelector('[data-testid="error"]'),
    back: document.querySelector('[data-testid="back"]'),
    send: document.querySelector('[data-testid="send"]'),
    status: document.querySelector('[data-testid="status"]'),
    statusText: document.querySelector(".t-status-text"),
  };

  var T = {
    mode: "idle",
    lang: body.getAttribute("data-branch-lang"),
    branchLang: body.getAttribute("data-branch-lang"),
    survey: null,
    step: 0,
    answers: {},
    touched: false,
    sending: false,
    retry: false,
    seen: {},        // survey keys answered or dropped: never shown again
    sent: [],        // what was posted (tests)
    shown: [],       // survey keys shown, in order (tests)
    csrf: csrfMeta ? csrfMeta.getAttribute("content") : "",
    floor: null,
    status: "connecting",
  };
  window.queueTablet = T;
  var idleTimer = null;
  var thanksTimer = null;
  var advanceTimer = null;

  function s(key) {
    var table = STR[T.lang] || STR[T.branchLang] || {};
    return table[key] !== undefined ? table[key] : "";
  }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (m, k) {
      return values[k] !== undefined ? values[k] : m;
    });
  }

  function setMode(mode) {
    T.mode = mode;
    body.setAttribute("data-mode", mode);
    Object.keys(screens).forEach(function (name) { screens[name].hidden = name !== mode; });
  }

  function setLang(lang) {
    if (!STR[lang]) return;
    T.lang = lang;
    body.setAttribute("data-lang", lang);
    document.documentElement.setAttribute("lang", lang);
    Array.prototype.forEach.call(document.querySelectorAll(".t-lang"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-lang") === lang ? "true" : "false");
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (el) {
      el.textContent = s(el.getAttribute("data-text"));
    });
    var welcome = s("welcome");
    Array.prototype.forEach.call(document.querySelectorAll(".t-welcome-other"), function (el) {
      el.hidden = el.textContent === welcome; // the same line twice says nothing new
    });
    renderStatus();
    if (T.mode === "survey") renderStep();
  }

  // --- timers --------------------------------------------------------------------------------

  function armIdle() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () {
      if (T.mode === "survey" && !T.sending) toIdle();
    }, cfg.idleMs);
  }

  function toIdle() {
    clearTimeout(idleTimer);
    clearTimeout(thanksTimer);
    clearTimeout(advanceTimer);
    if (T.survey) T.seen[T.survey.key] = true;
    T.survey = null;
    T.sending = false;
    setMode("idle");
    setLang(T.branchLang); // the next customer starts in the branch's language
  }

  function toThanks() {
    clearTimeout(idleTimer);
    clearTimeout(advanceTimer);
    if (T.survey) T.seen[T.survey.key] = true;
    T.sending = false;
    setMode("thanks");
    clearTimeout(thanksTimer);
    thanksTimer = setTimeout(function () {
      if (T.mode === "thanks") toIdle();
    }, cfg.thanksMs);
  }

  // --- a survey arrives (push, snapshot or poll) ---------------------------------------------

  function offer(survey) {
    if (!survey) {
      // nothing to rate any more (rated elsewhere, too old): an untouched survey goes away
      if (T.mode === "survey" && !T.touched && !T.sending) toIdle();
      return;
    }
    if (T.seen[survey.key]) return;
    if (T.survey && T.survey.key === survey.key) {
      T.survey.token = survey.token; // a fresher token for the same survey
      return;
    }
    if (T.sending) return;
    start(survey);
  }

  function start(survey) {
    clearTimeout(thanksTimer);
    clearTimeout(advanceTimer);
    if (T.survey) T.seen[T.survey.key] = true; // an earlier survey left unanswered
    T.survey = survey;
    T.step = 0;
    T.answers = {};
    T.touched = false;
    T.sending = false;
    T.shown.push(survey.key);
    setMode("survey");
    setLang(survey.lang || T.branchLang);
    armIdle();
  }

  // --- rendering a step ----------------------------------------------------------------------

  function serviceName() {
    var service = T.survey.service || {};
    return (service.names && service.names[T.lang]) || service.name || "";
  }

  function scoreButton(step, value) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "t-score";
    b.textContent = String(value);
    b.setAttribute("data-score", String(value));
    b.setAttribute("aria-pressed", T.answers[step] === value ? "true" : "false");
    b.addEventListener("click", function () { pick(step, value, b); });
    return b;
  }

  function renderStep() {
    var survey = T.survey;
    var step = survey.steps[T.step];
    els.visit.textContent = fill(s("visit"), { number: survey.number, service: serviceName() });
    els.progress.textContent = survey.steps.length > 1
      ? fill(s("progress"), { n: T.step + 1, total: survey.steps.length })
      : "";
    els.question.textContent = s(step);
    els.error.hidden = true;
    els.answers.innerHTML = "";
    els.answers.setAttribute("data-step", step);
    els.answers.className = "t-answers";
    els.back.hidden = T.step === 0;
    els.send.hidden = SCALES[step] !== undefined;
    els.send.disabled = false;
    els.send.textContent = T.step + 1 >= survey.steps.length ? s("send") : s("next");
    T.retry = false;
    if (SCALES[step]) {
      var low = SCALES[step][0];
      var high = SCALES[step][1];
      var rows = high - low > 5 ? [[low, 5], [6, high]] : [[low, high]]; // 0-10: two rows
      els.answers.classList.add(high - low > 5 ? "t-scale-11" : "t-scale-5");
      rows.forEach(function (range) {
        var row = document.createElement("div");
        row.className = "t-row";
        for (var v = range[0]; v <= range[1]; v++) row.appendChild(scoreButton(step, v));
        els.answers.appendChild(row);
      });
      var ends = document.createElement("div");
      ends.className = "t-ends";
      var a = document.createElement("span");
      a.textContent = low + " = " + s(step + "_low");
      var z = document.createElement("span");
      z.textContent = high + " = " + s(step + "_high");
      ends.appendChild(a);
      ends.appendChild(z);
      els.answers.appendChild(ends);
    } else if (step === "reasons") {
      var chosen = T.answers.reasons || [];
      var wrap = document.createElement("div");
      wrap.className = "t-reasons";
      var labels = s("reasons_labels") || {};
      survey.reasons.forEach(function (code) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "t-reason";
        b.setAttribute("data-reason", code);
        b.textContent = labels[code] || code;
        b.setAttribute("aria-pressed", chosen.indexOf(code) >= 0 ? "true" : "false");
        b.addEventListener("click", function () {
          touch();
          var list = T.answers.reasons || [];
          var at = list.indexOf(code);
          if (at >= 0) list.splice(at, 1); else list.push(code);
          T.answers.reasons = list;
          b.setAttribute("aria-pressed", at >= 0 ? "false" : "true");
        });
        wrap.appendChild(b);
      });
      els.answers.appendChild(wrap);
    } else if (step === "comment") {
      var area = document.createElement("textarea");
      area.className = "t-comment";
      area.maxLength = 2000;
      area.setAttribute("aria-labelledby", "question");
      area.setAttribute("data-testid", "comment");
      area.value = T.answers.comment || "";
      area.addEventListener("input", function () { touch(); T.answers.comment = area.value; });
      els.answers.appendChild(area);
    }
  }

  function touch() {
    T.touched = true;
    armIdle();
  }

  function pick(step, value, button) {
    if (T.sending || T.mode !== "survey" || T.survey.steps[T.step] !== step) return;
    touch();
    T.answers[step] = value;
    Array.prototype.forEach.call(els.answers.querySelectorAll(".t-score"), function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
      b.disabled = true; // a second tap changes nothing
    });
    clearTimeout(advanceTimer);
    advanceTimer = setTimeout(next, ADVANCE_MS);
  }

  function next() {
    if (T.mode !== "survey") return;
    if (T.step + 1 >= T.survey.steps.length) { send(); return; }
    T.step += 1;
    renderStep();
  }

  // --- sending -------------------------------------------------------------------------------

  function send() {
    if (T.sending || !T.survey) return;
    T.sending = true;
    els.send.disabled = true;
    var body_ = { token: T.survey.token, locale: T.lang };
    ["nps", "csat", "ces"].forEach(function (k) {
      if (T.answers[k] !== undefined) body_[k] = T.answers[k];
    });
    if (T.answers.reasons && T.answers.reasons.length) body_.reasons = T.answers.reasons.slice();
    if (T.answers.comment && T.answers.comment.trim()) body_.comment = T.answers.comment;
    T.sent.push(body_);
    post(body_, true);
  }

  function post(payload, retryCsrf) {
    fetch(cfg.rateUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": T.csrf },
      body: JSON.stringify(payload),
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          return { status: response.status, data: data };
        });
      })
      .then(function (r) {
        var code = r.data && r.data.error ? r.data.error.code : null;
        if (r.status === 201 || code === "already_rated") { toThanks(); return; }
        if (r.status === 400 && code === "csrf" && retryCsrf) { // the page's token got old
          refresh().then(function () { post(payload, false); });
          return;
        }
        if (code === "survey_expired" || code === "not_this_tablet" || code === "not_finished") {
          failed(s("expired"), false);
          return;
        }
        failed(s("failed"), true);
      })
      .catch(function () { failed(s("failed"), true); });
  }

  function failed(message, canRetry) {
    T.sending = false;
    els.error.textContent = message;
    els.error.hidden = false;
    if (canRetry) {
      T.retry = true;
      els.send.hidden = false;
      els.send.disabled = false;
      els.send.textContent = s("retry");
    } else {
      T.touched = false; // nothing more to do here: back to idle after a moment
      clearTimeout(thanksTimer);
      thanksTimer = setTimeout(toIdle, cfg.thanksMs);
    }
  }

  els.send.addEventListener("click", function () {
    if (T.mode !== "survey" || T.sending) return;
    touch();
    if (T.retry) { // sending failed: the same answers again
      T.retry = false;
      els.error.hidden = true;
      send();
      return;
    }
    if (!SCALES[T.survey.steps[T.step]]) next();
  });
  els.back.addEventListener("click", function () {
    if (T.mode !== "survey" || T.sending || T.step === 0) return;
    touch();
    clearTimeout(advanceTimer);
    T.step -= 1;
    renderStep();
  });
  Array.prototype.forEach.call(document.querySelectorAll(".t-lang"), function (b) {
    b.addEventListener("click", function () {
      if (T.mode === "survey") touch();
      setLang(b.getAttribute("data-lang"));
    });
  });

  // --- the truth: the state endpoint ---------------------------------------------------------

  function refresh() {
    return fetch(cfg.stateUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 403) { // revoked or unpaired: the page shows the pairing screen
          window.location.reload();
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (state) {
        if (!state) return;
        if (state.csrf) T.csrf = state.csrf;
        offer(state.survey);
      })
      .catch(function () { /* the next poll tries again */ });
  }

  function poll() {
    refresh().then(function () { setTimeout(poll, cfg.pollMs); });
  }

  function renderStatus() {
    els.status.setAttribute("data-state", T.status);
    els.statusText.textContent = T.status === "offline" || T.status === "refused" ? s("offline") : "";
  }

  // --- the hint: Socket.IO -------------------------------------------------------------------

  if (window.QueueFloor && window.io) {
    T.floor = window.QueueFloor.connect({
      auth: { device: "feedback" },
      branch: document.body.dataset.branch,
      onSnapshot: function (snap) { offer(snap.survey); },
      onChange: function (change) { if (change.survey) offer(change.survey); },
      onStatus: function (state) { T.status = state; renderStatus(); },
    });
  }
  setMode("idle");
  poll();
})();
