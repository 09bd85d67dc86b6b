/*! microjourney browser SDK: micro-moment events to a microjourney collector (docs/sdk.md).
 * Plain ES2017, no dependencies. Never sends input values, text content or stack traces.
 * The collector serves it as /sdk/microjourney.js followed by microjourney-surveys.js. */
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
    _consent: undefined, _lastPage: null, _errors: 0, _variants: {}, _exposures: {},

    init(options) {
      if (this._cfg) return this;
      if (!options || !options.host || !options.key) throw new Error('microjourney: init needs {host, key}');
      this._cfg = Object.assign({ channel: 'web', autocapture: true, flushInterval: 1000, batchSize: 20,
        requireConsent: false, maxRetries: 10, surveys: false, interventions: false, language: navigator.language || '' }, options);
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

    // With init({surveys: true}) or init({interventions: true}), every event the page tracks
    // (not autocapture's) asks the collector whether a survey or an intervention is due now
    // (mj.survey).
    track(event, properties, context) {
      if (!event || typeof event !== 'string') throw new Error('microjourney: track needs an event name');
      const call = this._event('track', { event }, properties, context);
      if (call && (this._cfg.surveys || this._cfg.interventions) && this.survey) {
        this.survey(event, call.properties, call.event_id);
      }
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

    // Experiments: the person's variant of `experiment` as the collector assigns it
    // (GET /v1/decide?experiment=...), asked once a page view per person. Resolves to null
    // when it is not running, cannot be asked or nothing may be sent (consent): show the default.
    variant(experiment) {
      if (!this._allowed()) return Promise.resolve(null);
      const name = String(experiment);
      const key = `${name}\u0000${this.userId || this.anonymousId}`;
      if (!this._variants[key]) {
        const q = new URLSearchParams({ experiment: name, channel: this._cfg.channel, anonymous_id: this.anonymousId });
        if (this.userId) q.set('user_id', this.userId);
        this._variants[key] = fetch(`${this._cfg.host}/v1/decide?${q}`, { mode: 'cors', credentials: 'omit',
          headers: { Authorization: `Bearer ${this._cfg.key}` } })
          .then((res) => (res.ok ? res.json() : null))
          .then((body) => (body && body.experiments && body.experiments[name]) || null, () => null);
      }
      return this._variants[key];
    },

    // Logs that `variant` of `experiment` is shown (POST /v1/exposures), once a page view per
    // person; call it when the variant is actually rendered. Resolves to true once stored.
    exposed(experiment, variant) {
      if (!experiment || !variant) throw new Error('microjourney: exposed needs (experiment, variant)');
      if (!this._allowed()) return Promise.resolve(false);
      const key = `${experiment}\u0000${variant}\u0000${this.userId || this.anonymousId}`;
      if (!this._exposures[key]) {
        const body = JSON.stringify({ experiment: String(experiment), variant: String(variant),
          anonymous_id: this.anonymousId, user_id: this.userId || undefined, channel: this._cfg.channel,
          consent: this._consent === true, timestamp: new Date().toISOString() });
        this._exposures[key] = fetch(`${this._cfg.host}/v1/exposures`, { method: 'POST', mode: 'cors',
          credentials: 'omit', keepalive: true, body,
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this._cfg.key}` } })
          .then((res) => {
            if (!res.ok) console.warn(`microjourney: exposure refused (${res.status})`);
            return res.ok;
          }, () => { delete this._exposures[key]; return false; });
      }
      return this._exposures[key];
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

  window.microjourney = mj;
  if (!('mj' in window)) window.mj = mj;
})(window, document);
