/*! microjourney browser SDK, interventions: shows the help or offer GET /v1/decide gives after
 * a tracked event and reports it shown, accepted or dismissed (docs/interventions.md, "The
 * browser SDK"). Extends window.microjourney (microjourney.js and microjourney-surveys.js, which
 * the collector serves together with this file as /sdk/microjourney.js). */
(function (window, document, mj) {
  'use strict';
  if (!mj || mj._offer) return;

  // The offer box: a fixed region (not a dialog: the customer may go on with the page), its
  // texts set as text, never as HTML. It takes no focus by itself; screen readers hear it
  // through its live region. Escape (inside it) or the close button dismisses it.
  const STYLE = `.mj-offer{position:fixed;left:16px;bottom:16px;z-index:2147483000;box-sizing:border-box;
width:min(360px,calc(100vw - 32px));padding:14px 18px;background:#fff;color:#111;border:1px solid #888;
border-left:4px solid #1a56db;border-radius:8px;box-shadow:0 4px 24px rgba(0,0,0,.25);font:15px/1.4 system-ui,sans-serif}
.mj-offer p{margin:0 28px 10px 0}.mj-offer .mj-actions{display:flex;gap:8px}
.mj-offer .mj-close{position:absolute;top:6px;right:6px;font-size:20px;line-height:1;background:none;border:0;
cursor:pointer;padding:4px 8px}.mj-offer :focus-visible{outline:3px solid #1a56db;outline-offset:2px}
@media (prefers-reduced-motion:no-preference){.mj-offer{animation:mj-offer-in .2s ease-out}}
@keyframes mj-offer-in{from{opacity:0;transform:translateY(12px)}}`;
  const WORDS = { help: 'Got it', chat: 'Chat with us', callback: 'Call me back', survey: 'Answer',
    webhook: 'OK', dismiss: 'No thanks', close: 'Close' };

  function node(tag, attrs, text) {
    const el = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => el.setAttribute(k, attrs[k]));
    if (text != null) el.textContent = String(text);
    return el;
  }

  Object.assign(mj, {
    // Shows one intervention (the decide answer's `intervention`), unless one is open already.
    // Reports `intervention_shown`, then `intervention_accepted` or `intervention_dismissed`,
    // as tracked events; tells the page through init({onIntervention}) and a
    // `microjourney:intervention` event on window ({name, offer, decision, action}).
    _offer(offer) {
      if (!offer || !offer.decision || this._offering || !this._allowed()) return false;
      if (offer.offer === 'webhook') return false;  // the company's systems act: nothing to show
      this._offering = true;
      const words = Object.assign({}, WORDS, this._cfg.interventionTexts || {});
      const about = { intervention: offer.name, decision: offer.decision, offer: offer.offer };
      const tell = (action) => {
        const detail = Object.assign({ action }, about, { text: offer.text || '' });
        try { if (typeof this._cfg.onIntervention === 'function') this._cfg.onIntervention(detail); } catch (e) {
          console.warn('microjourney: onIntervention failed', e);
        }
        window.dispatchEvent(new CustomEvent('microjourney:intervention', { detail }));
      };
      if (!document.getElementById('mj-offer-style')) {
        document.head.appendChild(node('style', { id: 'mj-offer-style' }, STYLE));
      }
      const box = node('div', { class: 'mj-offer', role: 'region', 'aria-label': offer.title || 'Help',
        'data-intervention': offer.name, 'data-offer': offer.offer });
      const live = node('div', { 'aria-live': 'polite' });
      live.append(node('p', {}, offer.text || ''));
      const actions = node('div', { class: 'mj-actions' });
      const accept = node('button', { type: 'button', class: 'mj-accept' }, offer.action || words[offer.offer] || words.help);
      const dismiss = node('button', { type: 'button', class: 'mj-dismiss' }, words.dismiss);
      const close = node('button', { type: 'button', class: 'mj-close', 'aria-label': words.close }, '\u00d7');
      actions.append(accept, dismiss);
      live.append(actions);
      box.append(live, close);
      let ended = false;
      const end = (action) => {
        if (ended) return;
        ended = true;
        box.remove();
        this._offering = false;
        this._event('track', { event: `intervention_${action}` }, about);
        this.flush();
        tell(action);
      };
      accept.addEventListener('click', () => end('accepted'));
      dismiss.addEventListener('click', () => end('dismissed'));
      close.addEventListener('click', () => end('dismissed'));
      box.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); end('dismissed'); } });
      document.body.appendChild(box);
      this._event('track', { event: 'intervention_shown' }, about);
      this.flush();
      tell('shown');
      return true;
    },
  });
})(window, document, window.microjourney);
