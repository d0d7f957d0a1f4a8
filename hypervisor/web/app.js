/* Skywire hypervisor page: login, live network map, one page per visor.
 * Plain JS, no dependencies, no external requests. The DOM is built with createElement and
 * textContent only: data from visors is never parsed as markup. Served with
 * Content-Security-Policy: default-src 'self' (no inline scripts or styles). */
'use strict';

(function () {
  const REFRESH_MS = 3000;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const MAP_W = 800;
  const MAP_H = 460;
  const PK_RE = /^[0-9a-f]{64}$/;

  const state = {
    csrf: null,
    user: null,
    view: null,       // 'login' | 'network' | 'visor' | 'password'
    visorPk: null,
    gen: 0,           // bumped on every view change: late answers of an old view are dropped
    timer: null,
    kick: null,       // runs the current view's refresh now
    sigs: {},         // last rendered data per table, to skip needless rebuilds
    pos: new Map(),   // map layout: pk -> {x, y}
    layoutSig: '',
    visors: [],
    network: null,
    logsApp: null,
    statusTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  /* ---------- DOM helpers (textContent only) ---------- */

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.setAttribute('class', v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, children) {
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  /* ---------- formatting ---------- */

  const short = (pk) => (typeof pk === 'string' ? pk.slice(0, 8) : '?');

  function fmtTime(v) {
    if (v === undefined || v === null || v === '' || v === 0) return '—';
    let d;
    if (typeof v === 'number') d = new Date(v > 1e12 ? v : v * 1000);
    else if (/^\d+$/.test(String(v))) d = new Date(Number(v) * 1000);
    else d = new Date(String(v));
    return isNaN(d.getTime()) ? String(v) : d.toLocaleString();
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.floor(Number(s) || 0));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function fmtBytes(n) {
    n = Number(n) || 0;
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }

  function fmtValue(k, v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (/uptime/.test(k) && typeof v === 'number') return fmtDuration(v);
    if (/(^|[_ ])(since|at)$/.test(k)) return fmtTime(v);
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  /* ---------- status line ---------- */

  function setStatus(text, kind) {
    const s = $('status');
    s.textContent = text || '';
    s.className = kind || '';
    clearTimeout(state.statusTimer);
    if (text && kind !== 'error') state.statusTimer = setTimeout(() => setStatus(''), 8000);
  }

  /* ---------- REST ---------- */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, opts) {
    opts = opts || {};
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && path !== '/api/login' && state.csrf) init.headers['X-CSRF-Token'] = state.csrf;
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network_error', 'The hypervisor cannot be reached.');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = text; }
    }
    if (!res.ok) {
      const err = data && typeof data === 'object' && data.error ? data.error : {};
      const e = new ApiError(res.status, err.code || 'http_' + res.status,
        err.message || (res.status + ' ' + (res.statusText || 'error')));
      e.retryAfter = res.headers.get('Retry-After');
      if (res.status === 401 && !opts.no401) {
        // a relayed answer is the visor's own: a 401 from it does not mean our session ended
        if (path.startsWith('/api/visors/')) confirmSession();
        else sessionLost();
      }
      throw e;
    }
    return data;
  }

  /* Ends the session here only if the hypervisor says it has ended. */
  function confirmSession() {
    api('GET', '/api/session', undefined, { no401: true }).catch((e) => { if (e.status === 401) sessionLost(); });
  }

  const visorPath = (pk, rest) => '/api/visors/' + encodeURIComponent(pk) + (rest || '');

  /* ---------- views and refresh loop ---------- */

  function showView(name) {
    stopRefresh();
    state.view = name;
    for (const v of ['login', 'network', 'visor', 'password']) $(v + '-view').hidden = v !== name;
    const inside = name !== 'login';
    $('topnav').hidden = !inside;
    $('who').hidden = !inside;
  }

  function stopRefresh() {
    state.gen++;
    clearTimeout(state.timer);
    state.timer = null;
    state.kick = null;
  }

  /* Runs fn(gen) now and every REFRESH_MS while the view is current; state.kick() runs it
   * again at once (after the one in flight, if any). */
  function startRefresh(fn) {
    stopRefresh();
    const gen = state.gen;
    let running = false, again = false;
    const tick = async () => {
      if (gen !== state.gen) return;
      if (running) { again = true; return; }
      running = true;
      clearTimeout(state.timer);
      try {
        await fn(gen);
      } catch (e) {
        if (gen === state.gen && e.status !== 401) setStatus(e.message, 'error');
      }
      running = false;
      if (gen !== state.gen) return;
      if (again) { again = false; tick(); return; }
      state.timer = setTimeout(tick, REFRESH_MS);
    };
    state.kick = tick;
    tick();
  }

  const kick = () => { if (state.kick) state.kick(); };

  /* Whether data differs from what was last rendered under key. */
  function changed(key, data) {
    const s = JSON.stringify(data);
    if (state.sigs[key] === s) return false;
    state.sigs[key] = s;
    return true;
  }

  function route() {
    if (!state.csrf) { showLogin(); return; }
    const m = /^#\/visor\/([0-9a-fA-F]{64})$/.exec(location.hash);
    if (m) showVisor(m[1].toLowerCase());
    else showNetwork();
  }

  /* ---------- login, logout, password ---------- */

  function showLogin(message) {
    showView('login');
    $('login-error').textContent = message || '';
    $('login-pass').focus();
  }

  function forget() {
    state.csrf = null;
    state.user = null;
    state.sigs = {};
    state.visors = [];
    state.network = null;
    for (const id of ['visor-rows', 'map-nodes', 'map-edges', 'tp-rows', 'rt-rows', 'app-rows', 'visor-summary', 'known-pks']) clear($(id));
    state.pos.clear();
    state.layoutSig = '';
    closeLogs();
  }

  function sessionLost() {
    if (!state.csrf) return;
    forget();
    showLogin('Your session has ended. Please log in again.');
  }

  function enter(user, csrf) {
    state.user = user;
    state.csrf = csrf;
    $('who-user').textContent = user ? 'Signed in as ' + user : '';
    route();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const btn = ev.submitter || $('login-form').querySelector('button[type=submit]');
    const user = $('login-user').value.trim();
    const pass = $('login-pass').value;
    $('login-error').textContent = '';
    btn.disabled = true;
    try {
      const r = await api('POST', '/api/login', { username: user, password: pass }, { no401: true });
      if (!r || typeof r.csrf_token !== 'string') throw new ApiError(500, 'bad_answer', 'Unexpected answer from the hypervisor.');
      $('login-pass').value = '';
      setStatus('');
      enter(user, r.csrf_token);
    } catch (e) {
      let msg = e.message;
      if (e.status === 401) msg = 'Wrong username or password.';
      else if (e.status === 429) {
        const s = parseInt(e.retryAfter, 10);
        msg = 'Too many login attempts. Try again ' + (s > 0 ? 'in ' + fmtDuration(s) : 'in a minute') + '.';
      }
      $('login-error').textContent = msg;
      $('login-pass').select();
    } finally {
      btn.disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api('POST', '/api/logout', undefined, { no401: true });
    } catch (e) {
      /* the session is dropped here either way */
    }
    forget();
    if (location.hash) history.replaceState(null, '', location.pathname);
    showLogin();
    setStatus('Logged out.', 'ok');
  }

  function showPassword() {
    showView('password');
    $('pw-form').reset();
    $('pw-error').textContent = '';
    $('pw-old').focus();
  }

  async function onPassword(ev) {
    ev.preventDefault();
    const oldp = $('pw-old').value, newp = $('pw-new').value;
    if (newp !== $('pw-new2').value) {
      $('pw-error').textContent = 'The two new passwords differ.';
      return;
    }
    const btn = $('pw-form').querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const r = await api('POST', '/api/password', { old_password: oldp, new_password: newp }, { no401: true });
      // every session ended, ours too: the answer brings our new one (the cookie is already set)
      if (r && typeof r.csrf_token === 'string') state.csrf = r.csrf_token;
      $('pw-form').reset();
      route();
      setStatus('Password changed.', 'ok');
    } catch (e) {
      if (e.status === 401 && e.code !== 'invalid_credentials') sessionLost();
      else $('pw-error').textContent = e.code === 'invalid_credentials' ? 'The current password is wrong.' : e.message;
    } finally {
      btn.disabled = false;
    }
  }

  /* ---------- network view ---------- */

  function showNetwork() {
    showView('network');
    startRefresh(refreshNetwork);
  }

  async function refreshNetwork(gen) {
    const [net, vis] = await Promise.allSettled([api('GET', '/api/network'), api('GET', '/api/visors')]);
    if (gen !== state.gen) return;
    if (vis.status === 'fulfilled' && Array.isArray(vis.value)) state.visors = vis.value;
    if (net.status === 'fulfilled' && net.value && typeof net.value === 'object') state.network = net.value;
    renderVisorList(state.visors);
    renderMap(state.network, state.visors);
    const failed = [net, vis].filter((r) => r.status === 'rejected').map((r) => r.reason);
    if (failed.length) throw failed[0];
    $('net-updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  }

  /* A visor's certificate from its summary ("membership": null in an open network). */
  function membershipText(m) {
    if (m === null) return 'open network';
    if (!m || typeof m !== 'object') return '—';
    const groups = Array.isArray(m.groups) ? m.groups.map(String).join(', ') : '';
    const until = typeof m.not_after === 'number' ? new Date(m.not_after * 1000) : null;
    const expired = until && until.getTime() <= Date.now();
    return (m.name ? String(m.name) : '(no name)') + (groups ? ' [' + groups + ']' : '') +
      (until ? (expired ? ', expired ' : ', expires ') + until.toLocaleDateString() : '');
  }

  function renderVisorList(visors) {
    if (!changed('visors', visors)) return;
    const tb = $('visor-rows');
    clear(tb);
    $('visor-empty').hidden = visors.length > 0;
    for (const v of visors) {
      const s = v.summary && typeof v.summary === 'object' ? v.summary : null;
      tb.appendChild(el('tr', { 'data-testid': 'visor-row', 'data-pk': v.pk, 'data-online': String(!!v.online) },
        el('td', null, el('a', { href: '#/visor/' + v.pk, class: 'pk', title: v.pk, 'data-testid': 'visor-link' }, v.pk)),
        el('td', null, el('span', { class: 'pill ' + (v.online ? 'on' : 'off') }, v.online ? 'online' : 'offline')),
        el('td', null, v.remote_addr || '—'),
        el('td', null, v.online ? fmtTime(v.connected_since) : '—'),
        el('td', null, s && s.transports !== undefined ? String(s.transports) + ' (' + String(s.transports_up ?? '?') + ')' : '—'),
        el('td', { 'data-testid': 'visor-membership' }, s && 'membership' in s ? membershipText(s.membership) : '—')));
    }
  }

  /* Nodes of the map: every visor this hypervisor manages, and every key the transport
   * discovery knows of (from the network answer and the edges' ends). */
  function mapModel(net, visors) {
    const nodes = new Map();
    for (const v of visors) if (typeof v.pk === 'string') nodes.set(v.pk, { pk: v.pk, managed: true, online: !!v.online });
    const edges = [];
    if (net) {
      for (const n of Array.isArray(net.nodes) ? net.nodes : []) {
        if (typeof n.pk !== 'string') continue;
        const o = nodes.get(n.pk);
        if (o) o.managed = o.managed || !!n.managed;
        else nodes.set(n.pk, { pk: n.pk, managed: !!n.managed, online: !!n.online });
      }
      for (const e of Array.isArray(net.edges) ? net.edges : []) {
        if (!Array.isArray(e.edges) || e.edges.length !== 2) continue;
        const [a, b] = [String(e.edges[0]), String(e.edges[1])].sort();
        for (const pk of [a, b]) if (!nodes.has(pk)) nodes.set(pk, { pk, managed: false, online: !!e.is_up });
        edges.push({ id: String(e.t_id), a, b, type: String(e.type || ''), up: !!e.is_up });
      }
    }
    return { nodes: [...nodes.values()].sort((x, y) => (x.pk < y.pk ? -1 : 1)), edges };
  }

  /* A small force layout (Fruchterman-Reingold) run when the graph changes; known nodes keep
   * their place as a start, new ones start on a circle, so the picture stays steady. */
  function layout(nodes, edges) {
    const n = nodes.length;
    const cx = MAP_W / 2, cy = MAP_H / 2;
    const P = nodes.map((nd, i) => {
      const old = state.pos.get(nd.pk);
      if (old) return { x: old.x, y: old.y, dx: 0, dy: 0 };
      const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
      const r = n > 1 ? Math.min(MAP_W, MAP_H) * 0.36 : 0;
      return { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a), dx: 0, dy: 0 };
    });
    const idx = new Map(nodes.map((nd, i) => [nd.pk, i]));
    const k = Math.min(180, Math.sqrt((MAP_W * MAP_H) / Math.max(n, 1)) * 0.55);
    let t = MAP_W / 10;
    for (let it = 0; it < 250 && n > 1; it++) {
      for (const p of P) { p.dx = 0; p.dy = 0; }
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let dx = P[i].x - P[j].x, dy = P[i].y - P[j].y;
          let d = Math.hypot(dx, dy);
          if (d < 0.01) { dx = (i - j) * 0.1 + 0.1; dy = 0.1; d = Math.hypot(dx, dy); }
          const f = (k * k) / d;
          P[i].dx += (dx / d) * f; P[i].dy += (dy / d) * f;
          P[j].dx -= (dx / d) * f; P[j].dy -= (dy / d) * f;
        }
      }
      for (const e of edges) {
        const i = idx.get(e.a), j = idx.get(e.b);
        if (i === undefined || j === undefined || i === j) continue;
        const dx = P[i].x - P[j].x, dy = P[i].y - P[j].y;
        const d = Math.max(0.01, Math.hypot(dx, dy));
        const f = (d * d) / k;
        P[i].dx -= (dx / d) * f; P[i].dy -= (dy / d) * f;
        P[j].dx += (dx / d) * f; P[j].dy += (dy / d) * f;
      }
      for (const p of P) {
        p.dx += (cx - p.x) * 0.05; p.dy += (cy - p.y) * 0.05; // gravity keeps parts together
        const d = Math.hypot(p.dx, p.dy);
        if (d > 0) { p.x += (p.dx / d) * Math.min(d, t); p.y += (p.dy / d) * Math.min(d, t); }
        p.x = Math.min(MAP_W - 50, Math.max(50, p.x));
        p.y = Math.min(MAP_H - 40, Math.max(34, p.y));
      }
      t = Math.max(1, t * 0.96);
    }
    state.pos = new Map(nodes.map((nd, i) => [nd.pk, { x: P[i].x, y: P[i].y }]));
  }

  function renderMap(net, visors) {
    const model = mapModel(net, visors);
    if (!changed('map', model)) return;
    const sig = model.nodes.map((x) => x.pk).join(',') + '|' + model.edges.map((e) => e.a + e.b).join(',');
    if (sig !== state.layoutSig) {
      layout(model.nodes, model.edges);
      state.layoutSig = sig;
    }
    const gN = $('map-nodes'), gE = $('map-edges');
    const focused = document.activeElement && document.activeElement.getAttribute('data-pk');
    clear(gE);
    clear(gN);
    if (!model.nodes.length) {
      gN.appendChild(svg('text', { x: MAP_W / 2, y: MAP_H / 2, class: 'node-label' }, 'No visors yet'));
      return;
    }
    // parallel transports between one pair are drawn as arcs side by side
    const pairs = new Map();
    for (const e of model.edges) {
      const key = e.a + e.b;
      if (!pairs.has(key)) pairs.set(key, []);
      pairs.get(key).push(e);
    }
    for (const list of pairs.values()) {
      list.forEach((e, i) => {
        const p = state.pos.get(e.a), q = state.pos.get(e.b);
        if (!p || !q) return;
        const off = (i - (list.length - 1) / 2) * 18;
        const len = Math.max(1, Math.hypot(q.x - p.x, q.y - p.y));
        const mx = (p.x + q.x) / 2 - ((q.y - p.y) / len) * off * 2;
        const my = (p.y + q.y) / 2 + ((q.x - p.x) / len) * off * 2;
        const label = e.type + ' transport ' + e.id + ' ' + (e.up ? 'up' : 'down') + ': ' + e.a + ' – ' + e.b;
        gE.appendChild(svg('g', { class: 'edge-g ' + e.type, 'data-testid': 'map-edge', 'data-tid': e.id, 'data-a': e.a, 'data-b': e.b, 'data-type': e.type, 'data-up': String(e.up) },
          svg('title', null, label),
          svg('path', { d: `M${p.x.toFixed(1)} ${p.y.toFixed(1)} Q${mx.toFixed(1)} ${my.toFixed(1)} ${q.x.toFixed(1)} ${q.y.toFixed(1)}`, class: 'edge ' + (e.up ? 'up' : 'down'), fill: 'none' })));
      });
    }
    for (const nd of model.nodes) {
      const p = state.pos.get(nd.pk);
      const cls = (nd.managed ? 'managed' : 'unmanaged') + ' ' + (nd.online ? 'online' : 'offline');
      const desc = 'Visor ' + nd.pk + ', ' + (nd.online ? 'online' : 'offline') + (nd.managed ? ', managed here' : ', not managed here');
      const g = svg('g', {
        class: 'node-g ' + cls, transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
        'data-testid': 'map-node', 'data-pk': nd.pk, 'data-managed': String(nd.managed), 'data-online': String(nd.online),
        role: nd.managed ? 'link' : 'img', tabindex: nd.managed ? '0' : null, 'aria-label': desc,
      },
      svg('title', null, desc),
      svg('circle', { r: nd.managed ? 16 : 11, class: 'node ' + cls }),
      svg('text', { y: nd.managed ? 32 : 26, class: 'node-label' }, short(nd.pk)));
      if (nd.managed) {
        g.addEventListener('click', () => { location.hash = '#/visor/' + nd.pk; });
        g.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); location.hash = '#/visor/' + nd.pk; }
        });
      }
      gN.appendChild(g);
      if (focused === nd.pk && nd.managed) g.focus();
    }
  }

  /* ---------- visor view ---------- */

  function showVisor(pk) {
    if (state.visorPk !== pk) {
      for (const id of ['tp-rows', 'rt-rows', 'app-rows', 'visor-summary']) clear($(id));
      for (const k of ['summary', 'tps', 'rts', 'apps']) delete state.sigs[k];
      $('visor-state').textContent = '';
      resetTpForm();
      closeLogs();
    }
    state.visorPk = pk;
    $('visor-pk').textContent = pk;
    showView('visor');
    startRefresh((gen) => refreshVisor(gen, pk));
  }

  async function refreshVisor(gen, pk) {
    const rs = await Promise.allSettled([
      api('GET', visorPath(pk)),
      api('GET', visorPath(pk, '/transports')),
      api('GET', visorPath(pk, '/routes')),
      api('GET', visorPath(pk, '/apps')),
      api('GET', '/api/visors'),
    ]);
    if (gen !== state.gen) return;
    const [sum, tps, rts, apps, vis] = rs;
    if (vis.status === 'fulfilled' && Array.isArray(vis.value)) state.visors = vis.value;
    const entry = state.visors.find((v) => v.pk === pk);
    const online = entry ? !!entry.online : sum.status === 'fulfilled';
    const st = $('visor-state');
    st.textContent = online ? 'online' : 'offline';
    st.className = 'pill ' + (online ? 'on' : 'off');
    renderKnownPks(pk);
    if (sum.status === 'fulfilled') {
      let s = sum.value;
      if (s && typeof s === 'object' && 'summary' in s && 'pk' in s) s = s.summary; // the list entry form
      renderSummary(s, entry);
    }
    if (tps.status === 'fulfilled' && Array.isArray(tps.value)) renderTransports(tps.value);
    if (rts.status === 'fulfilled' && Array.isArray(rts.value)) renderRoutes(rts.value);
    if (apps.status === 'fulfilled' && Array.isArray(apps.value)) renderApps(apps.value);
    const failed = rs.filter((r) => r.status === 'rejected');
    if (failed.length) {
      const e = failed[0].reason;
      if (!online) throw new ApiError(e.status, e.code, 'Visor ' + short(pk) + ' is offline: ' + e.message);
      throw e;
    }
  }

  function renderKnownPks(self) {
    const pks = new Set(state.visors.map((v) => v.pk));
    if (state.network && Array.isArray(state.network.nodes)) for (const n of state.network.nodes) pks.add(n.pk);
    pks.delete(self);
    const list = [...pks].filter((p) => typeof p === 'string').sort();
    if (!changed('known', list)) return;
    const dl = $('known-pks');
    clear(dl);
    for (const p of list) dl.appendChild(el('option', { value: p }));
  }

  function renderSummary(s, entry) {
    const data = { s, remote: entry ? [entry.remote_addr, entry.connected_since] : null };
    if (!changed('summary', data)) return;
    const dl = $('visor-summary');
    clear(dl);
    const add = (k, v) => { dl.appendChild(el('dt', null, k)); dl.appendChild(el('dd', null, fmtValue(k, v))); };
    if (entry) {
      add('remote address', entry.remote_addr);
      add('connected since', entry.online ? entry.connected_since : null);
    }
    if (!s || typeof s !== 'object') { add('summary', null); return; }
    if ('membership' in s) {
      const m = s.membership;
      if (m && typeof m === 'object') {
        add('membership', membershipText(m));
        add('membership.network', m.network);
        add('membership.role', m.role);
        add('membership.name', m.name);
        add('membership.groups', Array.isArray(m.groups) ? m.groups.join(', ') : m.groups);
        add('membership.valid from', fmtTime(m.not_before));
        add('membership.expires at', m.not_after);
      } else {
        add('membership', 'open network');
      }
    }
    for (const [k, v] of Object.entries(s)) {
      if (k === 'membership') continue;
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) add(k + '.' + k2, v2);
      else add(k, v);
    }
  }

  function managedPk(pk) {
    return state.visors.some((v) => v.pk === pk);
  }

  function pkCell(pk) {
    if (typeof pk !== 'string') return el('td', null, '—');
    if (managedPk(pk)) return el('td', null, el('a', { href: '#/visor/' + pk, class: 'pk', title: pk }, short(pk) + '…'));
    return el('td', null, el('code', { class: 'pk', title: pk }, short(pk) + '…'));
  }

  function renderTransports(list) {
    if (!changed('tps', [list, state.visors.map((v) => v.pk)])) return;
    const tb = $('tp-rows');
    clear(tb);
    $('tp-empty').hidden = list.length > 0;
    for (const t of list) {
      const id = String(t.id);
      const btn = el('button', { type: 'button', class: 'danger', 'data-testid': 'transport-remove', 'aria-label': 'Remove transport ' + id }, 'Remove');
      btn.addEventListener('click', () => mutate(btn, 'DELETE', visorPath(state.visorPk, '/transports/' + encodeURIComponent(id)), undefined,
        'Transport ' + short(id) + ' removed.'));
      tb.appendChild(el('tr', { 'data-testid': 'transport-row', 'data-id': id, 'data-remote-pk': t.remote_pk, 'data-type': t.type, 'data-state': t.state },
        el('td', null, el('code', { title: id }, short(id))),
        pkCell(t.remote_pk),
        el('td', null, t.type || '—'),
        el('td', null, el('span', { class: 'pill ' + (t.state || '') }, t.state || '?')),
        el('td', null, t.address || '—'),
        el('td', null, fmtBytes(t.bytes_sent) + ' / ' + fmtBytes(t.bytes_received)),
        el('td', { class: 'actions' }, btn)));
    }
  }

  function renderRoutes(list) {
    if (!changed('rts', list)) return;
    const tb = $('rt-rows');
    clear(tb);
    $('rt-empty').hidden = list.length > 0;
    for (const r of list) {
      const rid = String(r.rid);
      const btn = el('button', { type: 'button', class: 'danger', 'data-testid': 'route-remove', 'aria-label': 'Remove route ' + rid }, 'Remove');
      btn.addEventListener('click', () => mutate(btn, 'DELETE', visorPath(state.visorPk, '/routes/' + encodeURIComponent(rid)), undefined,
        'Route ' + rid + ' removed.'));
      const next = r.next_tp ? short(String(r.next_tp)) + ' / ' + String(r.next_rid ?? '?') : '—';
      const remote = r.remote_pk ? short(String(r.remote_pk)) + ':' + String(r.remote_port ?? '?') : '—';
      tb.appendChild(el('tr', { 'data-testid': 'route-row', 'data-rid': rid, 'data-type': r.type },
        el('td', null, rid),
        el('td', null, r.type || '?'),
        el('td', null, next),
        el('td', null, r.local_port !== undefined ? String(r.local_port) : '—'),
        el('td', null, remote),
        el('td', null, String(r.packets ?? 0) + ' (' + fmtBytes(r.bytes) + ')'),
        el('td', null, fmtTime(r.expires_at)),
        el('td', { class: 'actions' }, btn)));
    }
  }

  function renderApps(list) {
    if (!changed('apps', list)) return;
    const tb = $('app-rows');
    clear(tb);
    $('app-empty').hidden = list.length > 0;
    for (const a of list) {
      const name = String(a.name);
      const running = a.state === 'running';
      const base = visorPath(state.visorPk, '/apps/' + encodeURIComponent(name));
      const start = el('button', { type: 'button', class: 'small', 'data-testid': 'app-start', 'aria-label': 'Start ' + name, disabled: running }, 'Start');
      const stop = el('button', { type: 'button', class: 'small ghost', 'data-testid': 'app-stop', 'aria-label': 'Stop ' + name, disabled: !running }, 'Stop');
      const logs = el('button', { type: 'button', class: 'small ghost', 'data-testid': 'app-logs-open', 'aria-label': 'Logs of ' + name }, 'Logs');
      const auto = el('input', { type: 'checkbox', id: 'auto-' + name, 'data-testid': 'app-autostart', checked: !!a.auto_start });
      start.addEventListener('click', () => mutate(start, 'POST', base + '/start', undefined, name + ' started.'));
      stop.addEventListener('click', () => mutate(stop, 'POST', base + '/stop', undefined, name + ' stopped.'));
      logs.addEventListener('click', () => openLogs(name));
      auto.addEventListener('change', async () => {
        const want = auto.checked;
        const ok = await mutate(auto, 'POST', base + '/autostart', { auto_start: want },
          name + (want ? ' will start with the visor.' : ' will not start with the visor.'));
        if (!ok) auto.checked = !want;
      });
      let detail = a.state || '?';
      if (running && a.pid) detail += ' (pid ' + a.pid + ')';
      else if (a.exit_code !== undefined && a.state === 'exited') detail += ' (code ' + a.exit_code + ')';
      else if (a.signal) detail += ' (signal ' + a.signal + ')';
      tb.appendChild(el('tr', { 'data-testid': 'app-row', 'data-name': name, 'data-state': a.state },
        el('td', null, name),
        el('td', null, a.port !== undefined ? String(a.port) : '—'),
        el('td', null, el('span', { class: 'pill ' + (a.state || '') }, detail)),
        el('td', null, el('label', { class: 'toggle', for: 'auto-' + name }, auto, 'autostart')),
        el('td', { class: 'actions' }, start, stop, logs)));
    }
  }

  /* Sends a mutation from a control, shows the outcome and refreshes the view at once. */
  async function mutate(control, method, path, body, okText) {
    control.disabled = true;
    try {
      await api(method, path, body);
      setStatus(okText, 'ok');
      return true;
    } catch (e) {
      if (e.status !== 401) setStatus(e.message, 'error');
      return false;
    } finally {
      control.disabled = false;
      kick();
    }
  }

  async function onAddTransport(ev) {
    ev.preventDefault();
    const remote = $('tp-remote').value.trim().toLowerCase();
    const type = $('tp-type').value;
    const addr = $('tp-addr').value.trim();
    if (!PK_RE.test(remote)) {
      setStatus('The remote public key must be 64 hexadecimal characters.', 'error');
      $('tp-remote').focus();
      return;
    }
    const body = { remote_pk: remote, type };
    if (addr && type === 'stcp') body.address = addr;
    const btn = $('tp-form').querySelector('button[type=submit]');
    const label = btn.textContent;
    btn.textContent = 'Adding…';
    setStatus('Adding a ' + type + ' transport to ' + short(remote) + '…');
    const ok = await mutate(btn, 'POST', visorPath(state.visorPk, '/transports'), body,
      'Transport to ' + short(remote) + ' added.');
    btn.textContent = label;
    if (ok) resetTpForm();
  }

  function resetTpForm() {
    $('tp-form').reset();
    $('tp-addr').disabled = false;
  }

  /* ---------- logs ---------- */

  function logsText(d) {
    if (d === null || d === undefined) return '';
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) return d.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n');
    for (const k of ['lines', 'logs', 'log', 'text']) if (k in d) return logsText(d[k]);
    return JSON.stringify(d, null, 2);
  }

  async function openLogs(name) {
    state.logsApp = name;
    $('logs').hidden = false;
    $('logs-app').textContent = name;
    await loadLogs();
  }

  async function loadLogs() {
    const name = state.logsApp, pk = state.visorPk;
    if (!name) return;
    $('logs-text').textContent = 'Loading…';
    try {
      const d = await api('GET', visorPath(pk, '/apps/' + encodeURIComponent(name) + '/logs?lines=200'));
      if (state.logsApp === name && state.visorPk === pk) $('logs-text').textContent = logsText(d) || '(no output)';
    } catch (e) {
      if (state.logsApp === name) $('logs-text').textContent = 'Could not load the logs: ' + e.message;
    }
  }

  function closeLogs() {
    state.logsApp = null;
    $('logs').hidden = true;
    clear($('logs-text'));
  }

  /* ---------- start ---------- */

  async function init() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('pw-open').addEventListener('click', showPassword);
    $('pw-cancel').addEventListener('click', () => route());
    $('pw-form').addEventListener('submit', onPassword);
    $('tp-form').addEventListener('submit', onAddTransport);
    $('tp-type').addEventListener('change', () => { $('tp-addr').disabled = $('tp-type').value !== 'stcp'; });
    $('logs-refresh').addEventListener('click', loadLogs);
    $('logs-close').addEventListener('click', closeLogs);
    window.addEventListener('hashchange', () => { if (state.csrf) route(); });
    try {
      const s = await api('GET', '/api/session', undefined, { no401: true });
      if (s && typeof s.csrf_token === 'string') { enter(s.user || 'admin', s.csrf_token); return; }
    } catch (e) {
      if (e.status !== 401) setStatus(e.message, 'error');
    }
    showLogin();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
