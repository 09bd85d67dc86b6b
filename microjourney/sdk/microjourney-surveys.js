/*! microjourney browser SDK, surveys: asks GET /v1/decide after tracked events and shows the
 * survey widget (docs/sdk.md, "Surveys"). Extends window.microjourney (microjourney.js, which the
 * collector serves together with this file as /sdk/microjourney.js). */
(function (window, document, mj) {
  'use strict';
  if (!mj || mj.survey) return;

  Object.assign(mj, {
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
      // With interventions, the events queued so far are sent first: the collector reads
      // the person's open attempts from the events it has (docs/interventions.md).
      const sent = () => (this._cfg.interventions ? this.flush() : Promise.resolve());
      const ask = () => (this._surveying ? null : sent().then(() => fetch(`${this._cfg.host}/v1/decide?${q}`, {
        mode: 'cors', credentials: 'omit', headers: { Authorization: `Bearer ${this._cfg.key}` } }))
        .then((res) => (res.ok ? res.json() : null)).then((body) => {
          if (body && body.intervention && this._offer) this._offer(body.intervention);
          const shown = body && this._cfg.surveys && body.survey;
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
  });

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
})(window, document, window.microjourney);
