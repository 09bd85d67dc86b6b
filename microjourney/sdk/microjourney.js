/*! microjourney browser SDK: micro-moment events to a microjourney collector (docs/sdk.md).
 * Plain ES2017, no dependencies. Never sends input values, text content or stack traces. */
(function (window, document) {
  'use strict';
  const VERSION = '0.1.0';
  const LIBRARY = { name: 'microjourney.js', version: VERSION };
  const CLICKABLE = 'a[href],button,input,select,textarea,label,summary,option,[role=button],[role=link],' +
    '[role=checkbox],[role=tab],[role=menuitem],[onclick],[contenteditable],[tabindex]';
  const FIELDS = 'input,select,textarea';
  const CHECKS = ['valueMissing', 'typeMismatch', 'patternMismatch', 'tooLong', 'tooShort', 'rangeUnderflow',
    'rangeOverflow', 'stepMismatch', 'badInput', 'customError'];
  const SESSION_IDLE_MS = 30 * 60 * 1000;

  const memory = {};
  const store = {  // localStorage when it works (private modes may refuse), else memory
    get(k) { try { return window.localStorage.getItem(k); } catch (e) { return memory[k] || null; } },
    set(k, v) { try { window.localStorage.setItem(k, v); } catch (e) { memory[k] = v; } },
    drop(k) { try { window.localStorage.removeItem(k); } catch (e) { delete memory[k]; } },
  };
  const KEYS = ['mj_anonymous_id', 'mj_user_id', 'mj_session_id', 'mj_session_seen'];

  function uuid() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // A CSS-ish selector: tag#id or tag[name=..] or tag.class.class, up to 4 levels. No text content.
  function selector(el) {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && parts.length < 4; n = n.parentElement) {
      let s = n.tagName.toLowerCase();
      if (n.id) { parts.unshift(`${s}#${n.id}`); break; }
      const name = n.getAttribute('name');
      if (name) s += `[name="${name}"]`;
      else if (typeof n.className === 'string' && n.className.trim()) {
        s += '.' + n.className.trim().split(/\s+/).slice(0, 2).join('.');
      }
      parts.unshift(s);
      if (s === 'body') break;
    }
    return parts.join(' > ');
  }

  function fieldName(el) {
    return el.getAttribute('name') || el.id || selector(el);
  }

  // Retry-After (seconds, or an HTTP date) in ms, at most 10 minutes; 0 when absent or unreadable.
  // The collector exposes it to pages (Access-Control-Expose-Headers), after a 429 or a 503.
  function waitFor(value) {
    if (!value) return 0;
    const seconds = /^\s*\d+\s*$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    return seconds > 0 ? Math.min(seconds, 600) * 1000 : 0;
  }

  function cut(text, n) {
    text = String(text == null ? '' : text);
    return text.length > n ? text.slice(0, n) : text;
  }

  const mj = {
    version: VERSION,
    _cfg: null, _queue: [], _flushing: null, _timer: null, _retryTimer: null, _attempt: 0,
    _consent: undefined, _lastPage: null, _errors: 0,

    init(options) {
      if (this._cfg) return this;
      if (!options || !options.host || !options.key) throw new Error('microjourney: init needs {host, key}');
      this._cfg = Object.assign({ channel: 'web', autocapture: true, flushInterval: 1000, batchSize: 20,
        requireConsent: false, maxRetries: 10, surveys: false, language: navigator.language || '' }, options);
      this._cfg.host = String(this._cfg.host).replace(/\/+$/, '');
      const remembered = store.get('mj_consent');  // a choice made on an earlier page
      if (this._consent === undefined && remembered) this._consent = remembered === 'true';
      // Identifiers are written to localStorage only once something may be sent (see _push).
      this.anonymousId = store.get('mj_anonymous_id') || uuid();
      this.userId = store.get('mj_user_id') || null;
      this._timer = window.setInterval(() => this.flush(), this._cfg.flushInterval);
      const hide = () => this._beacon();
      document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') hide(); });
      window.addEventListener('pagehide', hide);
      if (this._cfg.autocapture) autocapture(this);
      return this;
    },

    _session() {
      const now = Date.now();
      let id = store.get('mj_session_id');
      const last = Number(store.get('mj_session_seen') || 0);
      if (!id || now - last > SESSION_IDLE_MS) id = uuid();
      store.set('mj_session_id', id);
      store.set('mj_session_seen', String(now));
      return id;
    },

    _context(extra) {
      const ctx = Object.assign({ library: LIBRARY }, extra || {});
      if (this._consent === true) ctx.consent = { analytics: true };
      return ctx;
    },

    _allowed() {
      if (!this._cfg) { console.warn('microjourney: call init() first'); return false; }
      if (this._consent === false) return false;
      return !(this._cfg.requireConsent && this._consent !== true);
    },

    _push(call) {
      store.set('mj_anonymous_id', this.anonymousId);
      if (this.userId) store.set('mj_user_id', this.userId);
      this._queue.push(call);
      if (this._queue.length >= this._cfg.batchSize) this.flush();
    },

    _event(type, fields, properties, context) {
      if (!this._allowed()) return;
      const call = Object.assign({ type, timestamp: new Date().toISOString(), event_id: uuid(),
        anonymous_id: this.anonymousId, channel: this._cfg.channel, session_id: this._session() }, fields);
      if (this.userId) call.user_id = this.userId;
      call.properties = Object.assign({}, properties || {});
      call.context = this._context(context);
      this._push(call);
      return call;
    },

    // With init({surveys: true}), every event the page tracks (not autocapture's) asks the
    // collector whether a survey is due now (mj.survey).
    track(event, properties, context) {
      if (!event || typeof event !== 'string') throw new Error('microjourney: track needs an event name');
      const call = this._event('track', { event }, properties, context);
      if (call && this._cfg.surveys) this.survey(event, call.properties, call.event_id);
    },

    page(name, properties) {
      if (name && typeof name === 'object') { properties = name; name = undefined; }
      if (!this._allowed()) return;
      const loc = window.location;
      const props = Object.assign({ page: loc.pathname, url: loc.origin + loc.pathname, title: document.title,
        referrer: document.referrer.split(/[?#]/)[0] }, properties || {});
      this._lastPage = loc.pathname;
      this._event('page', name ? { name } : {}, props);
    },

    identify(userId, traits) {
      if (!userId) throw new Error('microjourney: identify needs a user id');
      this.userId = String(userId);
      if (!this._allowed()) return;
      this._push({ type: 'identify', anonymous_id: this.anonymousId, user_id: this.userId,
        traits: Object.assign({}, traits || {}), timestamp: new Date().toISOString(), message_id: uuid(),
        context: this._context() });
    },

    alias(previousId, userId) {
      if (!previousId || !userId) throw new Error('microjourney: alias needs (previousId, userId)');
      if (!this._allowed()) return;
      this._push({ type: 'alias', previous_id: String(previousId), user_id: String(userId),
        timestamp: new Date().toISOString(), message_id: uuid(), context: this._context() });
    },

    // Remembered in localStorage. Refusing drops the queue and forgets the stored identifiers.
    consent(choice) {
      this._consent = Boolean(choice && choice.analytics);
      store.set('mj_consent', String(this._consent));
      if (!this._consent) {
        this._queue = [];
        window.clearTimeout(this._retryTimer);
        this._retryTimer = null;
        this.reset();
      } else if (this._cfg && this._cfg.autocapture && this._lastPage === null) this.page();  // the view missed
      return this;
    },

    reset() {  // on log out: a new anonymous id, no user id
      this.userId = null;
      this.anonymousId = uuid();
      KEYS.forEach(store.drop);
    },

    // Send queued calls in order, one batch at a time; resolves when the queue is empty or a
    // retry is scheduled. Network errors, 429 and 5xx keep the batch (same event ids) for a retry.
    flush() {
      if (!this._cfg) return Promise.resolve();
      if (!this._flushing) {
        const done = () => { this._flushing = null; };
        this._flushing = this._drain().then(done, done);
      }
      return this._flushing;
    },

    async _drain() {
      while (this._queue.length && !this._retryTimer) {
        const batch = this._queue.slice(0, this._cfg.batchSize);
        let retryAfter = null;
        try {
          const res = await fetch(`${this._cfg.host}/v1/batch`, {
            method: 'POST', mode: 'cors', credentials: 'omit',
            headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this._cfg.key}` },
            body: JSON.stringify({ batch }),
          });
          if (res.ok) {
            const body = await res.json().catch(() => ({}));
            if (body.rejected && body.rejected.length) console.warn('microjourney: rejected', body.rejected);
          } else if (res.status === 429 || res.status >= 500) {
            retryAfter = waitFor(res.headers.get('Retry-After'));
          } else {
            console.warn(`microjourney: batch refused (${res.status})`, await res.text().catch(() => ''));
          }
        } catch (e) {
          retryAfter = 0;  // network error, CORS refusal or server down
        }
        if (retryAfter === null) {
          this._attempt = 0;
          if (this._queue[0] === batch[0]) this._queue.splice(0, batch.length);
        } else if (this._queue[0] === batch[0]) {  // not dropped by consent({analytics: false}) meanwhile
          this._retry(retryAfter);
        }
      }
    },

    _retry(retryAfter) {
      this._attempt += 1;
      if (this._attempt > this._cfg.maxRetries) {  // give up on this batch; keep the rest
        this._queue.splice(0, this._cfg.batchSize);
        this._attempt = 0;
        return;
      }
      const backoff = Math.min(30000, 500 * 2 ** (this._attempt - 1)) * (0.75 + Math.random() / 2);
      this._retryTimer = window.setTimeout(() => { this._retryTimer = null; this.flush(); },
        Math.max(retryAfter, backoff));
    },

    // Asks the collector (GET /v1/decide) whether a survey is due after `event`, one ask at a
    // time and none while a survey is open; shows it after its delay_ms. Resolves to it, or null.
    survey(event, properties, eventId) {
      if (!this._allowed()) return Promise.resolve(null);
      const q = new URLSearchParams({ event: String(event), channel: this._cfg.channel, anonymous_id: this.anonymousId });
      if (this.userId) q.set('user_id', this.userId);
      if (eventId) q.set('event_id', eventId);
      if (this._cfg.language) q.set('language', this._cfg.language);
      if (this._consent === true) q.set('consent', 'true');
      const props = {};  // plain values only, for moments that test properties
      Object.keys(properties || {}).forEach((k) => {
        const v = properties[k];
        if (typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 100)) props[k] = v;
      });
      const json = JSON.stringify(props);
      if (json !== '{}' && json.length <= 2000) q.set('properties', json);
      const ask = () => (this._surveying ? null : fetch(`${this._cfg.host}/v1/decide?${q}`, { mode: 'cors',
        credentials: 'omit', headers: { Authorization: `Bearer ${this._cfg.key}` } })
        .then((res) => (res.ok ? res.json() : null)).then((body) => {
          const shown = body && body.survey;
          if (!shown) return null;
          this._surveying = true;
          window.setTimeout(() => showSurvey(this, shown), shown.delay_ms || 0);
          return shown;
        }, () => null));
      this._asking = (this._asking || Promise.resolve()).then(ask, ask);
      return this._asking;
    },

    // POST /v1/responses: one answer (or the dismissal) of a display; sent again once on failure.
    _respond(shown, fields) {
      const body = JSON.stringify(Object.assign({ survey: shown.name, display: shown.display,
        anonymous_id: this.anonymousId, user_id: this.userId || undefined, channel: this._cfg.channel,
        consent: this._consent === true, timestamp: new Date().toISOString() }, fields));
      const send = () => fetch(`${this._cfg.host}/v1/responses`, { method: 'POST', mode: 'cors',
        credentials: 'omit', keepalive: true, body,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this._cfg.key}` } });
      return send().then((res) => (res.status >= 500 ? Promise.reject(res) : res))
        .catch(() => new Promise((ok) => window.setTimeout(ok, 1000)).then(send))
        .then((res) => { if (!res.ok) console.warn(`microjourney: answer refused (${res.status})`); },
          () => console.warn('microjourney: answer not sent'));
    },

    // The page is going away: hand everything queued (and the batch in flight: the event ids
    // make a repeat harmless) to sendBeacon, with the key in the body since beacons cannot set headers.
    _beacon() {
      if (!this._cfg || !navigator.sendBeacon) return;
      const url = `${this._cfg.host}/v1/batch`;
      let sent = 0;  // the queue still holds the batch in flight until it is answered
      for (let i = 0; i < this._queue.length; i += this._cfg.batchSize) {
        const batch = this._queue.slice(i, i + this._cfg.batchSize);
        if (!navigator.sendBeacon(url, JSON.stringify({ batch, key: this._cfg.key }))) break;
        sent = i + batch.length;
      }
      this._queue.splice(0, sent);
    },
  };

  function autocapture(mj) {
    // Page views: on load and on single-page navigations.
    const view = () => { if (window.location.pathname !== mj._lastPage) mj.page(); };
    const push = window.history.pushState;
    window.history.pushState = function () { const r = push.apply(this, arguments); view(); return r; };
    window.addEventListener('popstate', view);
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => mj.page());
    else mj.page();

    // Clicks: page coordinates and the element's selector; dead when nothing there reacts to clicks.
    document.addEventListener('click', (e) => {
      const el = e.target && e.target.nodeType === 1 ? e.target : e.target && e.target.parentElement;
      if (!el) return;
      const props = { x: Math.round(e.pageX), y: Math.round(e.pageY), target: selector(el),
        page: window.location.pathname };
      const live = el.closest(CLICKABLE) || window.getComputedStyle(el).cursor === 'pointer';
      if (!live) props.dead = true;
      mj._event('track', { event: 'click' }, props);
    }, true);

    // Fields: how often edited and how long focused, never the value.
    const focus = new WeakMap();
    document.addEventListener('focusin', (e) => {
      if (e.target.matches && e.target.matches(FIELDS)) focus.set(e.target, { at: Date.now(), edits: 0 });
    }, true);
    document.addEventListener('input', (e) => {
      const f = focus.get(e.target);
      if (f) f.edits += 1;
    }, true);
    document.addEventListener('focusout', (e) => {
      const f = focus.get(e.target);
      if (!f) return;
      focus.delete(e.target);
      if (f.edits > 0) {
        mj._event('track', { event: 'field_edited' }, { field: fieldName(e.target), edits: f.edits,
          dwell_ms: Date.now() - f.at, page: window.location.pathname });
      }
    }, true);
    // Validation errors from the constraint validation API: which check failed, not the value.
    document.addEventListener('invalid', (e) => {
      const el = e.target;
      const v = el.validity || {};
      mj._event('track', { event: 'error_shown' }, { field: fieldName(el), valid: false,
        page: window.location.pathname, reason: CHECKS.find((k) => v[k]) || 'invalid' });
    }, true);

    // JavaScript errors: a short message and where, no stack.
    const jsError = (message, source) => {
      if (mj._errors++ >= 25) return;  // a broken page must not flood the collector
      mj._event('track', { event: 'js_error' }, { message: cut(message, 200), source: cut(source, 300),
        page: window.location.pathname });
    };
    window.addEventListener('error', (e) => {
      if (e.target !== window && e.target && e.target.tagName) return;  // resource loading errors
      jsError(e.message, e.filename ? `${e.filename.split('?')[0]}:${e.lineno}:${e.colno}` : '');
    });
    window.addEventListener('unhandledrejection', (e) => {
      const r = e.reason;
      jsError(`Unhandled rejection: ${r && r.message ? r.message : r}`, '');
    });
  }


  // The survey widget: a fixed dialog (nothing on the page moves), one question at a time.
  // Texts are set as text, never as HTML. Focus moves in, is trapped, and goes back on close.
  const STYLE = `.mj-survey{position:fixed;right:16px;bottom:16px;z-index:2147483000;box-sizing:border-box;
width:min(360px,calc(100vw - 32px));max-height:calc(100vh - 32px);overflow:auto;padding:16px 20px;
background:#fff;color:#111;border:1px solid #888;border-radius:8px;box-shadow:0 4px 24px rgba(0,0,0,.25);
font:15px/1.4 system-ui,sans-serif}.mj-survey h2{font-size:16px;margin:0 32px 8px 0}
.mj-survey fieldset{border:0;margin:0;padding:0}.mj-survey legend{padding:0;margin-bottom:8px}
.mj-survey .mj-scale{display:flex;flex-wrap:wrap;gap:4px}.mj-survey label{display:inline-flex;gap:4px;
align-items:center;padding:4px 6px;border:1px solid #bbb;border-radius:4px;cursor:pointer}
.mj-survey .mj-choice label{display:flex;margin-bottom:4px}.mj-survey textarea{width:100%;min-height:64px;box-sizing:border-box}
.mj-survey .mj-close{position:absolute;top:8px;right:8px;font-size:20px;line-height:1;background:none;
border:0;cursor:pointer;padding:4px 8px}.mj-survey .mj-actions{margin-top:12px;display:flex;gap:8px}
.mj-survey :focus-visible{outline:3px solid #1a56db;outline-offset:2px}
@media (prefers-reduced-motion:no-preference){.mj-survey{animation:mj-survey-in .2s ease-out}}
@keyframes mj-survey-in{from{opacity:0;transform:translateY(12px)}}`;
  const WORDS = { next: 'Next', send: 'Send', skip: 'Skip', close: 'Close', thanks: 'Thank you!',
    up: 'Thumbs up', down: 'Thumbs down' };

  function node(tag, attrs, text) {
    const el = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => el.setAttribute(k, attrs[k]));
    if (text != null) el.textContent = String(text);
    return el;
  }

  function showSurvey(mj, s) {
    const words = Object.assign({}, WORDS, mj._cfg.surveyTexts || {});
    if (!document.getElementById('mj-survey-style')) {
      document.head.appendChild(node('style', { id: 'mj-survey-style' }, STYLE));
    }
    const back = document.activeElement;
    const id = `mj-survey-${s.display}`;
    const box = node('div', { class: 'mj-survey', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': `${id}-title` });
    const close = node('button', { type: 'button', class: 'mj-close', 'aria-label': words.close }, '\u00d7');
    const area = node('div', { 'aria-live': 'polite' });
    box.append(node('h2', { id: `${id}-title` }, s.title || s.questions[0].text), area, close);
    const given = {};
    let done = false;
    let ended = false;

    const visible = (q) => !q.when || (given[q.when.question] != null
      && (q.when.at_least == null || Number(given[q.when.question]) >= q.when.at_least)
      && (q.when.at_most == null || Number(given[q.when.question]) <= q.when.at_most));
    const after = (i) => s.questions.findIndex((q, j) => j > i && visible(q));

    const end = (dismissed) => {
      if (ended) return;
      ended = true;
      if (dismissed && !done) mj._respond(s, { dismissed: true });
      document.removeEventListener('focusin', keepFocus, true);
      box.remove();
      mj._surveying = false;
      if (back && back.isConnected && typeof back.focus === 'function') back.focus();
    };
    const tabbable = () => Array.from(box.querySelectorAll('button,input,textarea')).filter((el) => !el.disabled
      && (el.type !== 'radio' || el.checked || !box.querySelector(`input[name="${el.name}"]:checked`)
        && box.querySelector(`input[name="${el.name}"]`) === el));
    function keepFocus(e) { if (!box.contains(e.target)) (tabbable()[0] || close).focus(); }
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); end(true); return; }
      if (e.key !== 'Tab') return;
      const all = tabbable();
      const first = all[0];
      const last = all[all.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    });
    close.addEventListener('click', () => end(true));

    const ask = (i) => {
      const q = s.questions[i];
      const form = node('form', { novalidate: '' });
      const name = `${id}-${q.id}`;
      let field;
      if (q.type === 'text') {
        form.append(node('label', { for: name, class: 'mj-text' }, q.text));
        field = node('textarea', { id: name, maxlength: '5000' });
        form.append(field);
      } else {
        const set = node('fieldset', { class: q.scale ? 'mj-scale-set' : 'mj-choice' });
        set.append(node('legend', {}, q.text));
        const options = node('div', { class: q.scale ? 'mj-scale' : 'mj-options', role: 'presentation' });
        const values = q.type === 'thumbs' ? [['0', '\ud83d\udc4e', words.down], ['1', '\ud83d\udc4d', words.up]]
          : q.scale ? Array.from({ length: q.scale[1] - q.scale[0] + 1 }, (_, k) => [String(q.scale[0] + k), String(q.scale[0] + k)])
            : q.choices.map((c) => [c, c]);
        values.forEach(([value, text, label]) => {
          const input = node('input', { type: q.type === 'multiple' ? 'checkbox' : 'radio', name, value });
          if (label) input.setAttribute('aria-label', label);
          const wrap = node('label');
          wrap.append(input, node('span', label ? { 'aria-hidden': 'true' } : {}, text));
          options.append(wrap);
        });
        set.append(options);
        form.append(set);
      }
      const actions = node('div', { class: 'mj-actions' });
      actions.append(node('button', { type: 'submit' }, i < s.questions.length - 1 ? words.next : words.send));
      if (!q.required) {
        const skip = node('button', { type: 'button' }, words.skip);
        skip.addEventListener('click', () => next(i));
        actions.append(skip);
      }
      form.append(actions);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        let value;
        if (q.type === 'text') value = field.value.trim();
        else {
          const picked = Array.from(form.querySelectorAll('input:checked'), (el) => el.value);
          value = q.type === 'multiple' ? picked : picked[0];
        }
        if (value == null || value === '' || (Array.isArray(value) && !value.length)) {
          if (q.required) form.querySelector('input,textarea').focus();
          else next(i);
          return;
        }
        given[q.id] = Array.isArray(value) ? value.join(';') : value;
        mj._respond(s, { question: q.id, answer: value, final: after(i) < 0 });
        next(i);
      });
      area.replaceChildren(form);
      (form.querySelector('input,textarea') || close).focus();
    };

    const next = (i) => {
      const j = after(i);
      if (j >= 0) { ask(j); return; }
      done = true;
      area.replaceChildren(node('p', { role: 'status' }, words.thanks));
      close.focus();
      window.setTimeout(() => end(false), 2000);
    };

    document.body.appendChild(box);
    document.addEventListener('focusin', keepFocus, true);
    const first = s.questions.findIndex(visible);
    if (first < 0) { end(false); return; }
    ask(first);
  }

  window.microjourney = mj;
  if (!('mj' in window)) window.mj = mj;
})(window, document);
