// The operations wall around the 3D view: clock, KPI tiles, the alert list, the case list,
// a north arrow and a scale bar.
//
// Every number comes from the API as it is: `/live/vitals` (sensors online of total, active
// alerts by severity, open cases, the highest current value per observed property), `/cases` (open cases by the step they wait on),
// `/runs?state=running` (drills under way), `/alerts?state=active` (the list, newest first).
// The lists are re-read when `/live/ws` reports an alert or a case, and every 15 s besides.
import * as THREE from 'three';
import { t, term, lang } from './i18n.js';

const $ = (id) => document.getElementById(id);
const SEVERITIES = ['red', 'orange', 'yellow', 'blue'];
// the workflow's open steps, each named for the step a case waits on (立案 … 结案)
const STEP_OF = { reported: 'filed', filed: 'dispatched', dispatched: 'handled', handled: 'verified', verified: 'closed' };
const STEPS = ['filed', 'dispatched', 'handled', 'verified', 'closed'];
const REFRESH_MS = 15000;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// a name a person would read, or null: the Den Haag buildings are named by their GUIDs
export function readableName(name) {
  if (!name) return null;
  return /^(GUID_|\{)?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}/.test(name) || /^[0-9A-Za-z_$]{22}$/.test(name) ? null : name;
}

function severityClass(severity) {
  return SEVERITIES.includes(severity) ? `sev-${severity}` : 'sev-other';
}

const pad = (n) => String(n).padStart(2, '0');
function clockText(now) {
  const weekday = now.toLocaleDateString(lang === 'zh' ? 'zh-CN' : 'en-GB', { weekday: lang === 'zh' ? 'long' : 'short' });
  return [`${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${weekday}`,
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`];
}

function timeOf(iso) {
  if (!iso) return '';
  const at = new Date(iso), now = new Date();
  const hm = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  return at.toDateString() === now.toDateString() ? hm : `${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${hm}`;
}

function span(ms) {
  const minutes = Math.max(0, Math.round(Math.abs(ms) / 60000));
  if (minutes < 60) return t('minutes', { m: minutes });
  if (minutes < 48 * 60) return t('hours', { h: Math.floor(minutes / 60), m: minutes % 60 });
  return t('days', { d: Math.floor(minutes / 1440), h: Math.floor((minutes % 1440) / 60) });
}

// the header's clock, on every page (wall, unit page, crowd drill)
export function startClock() {
  const tick = () => {
    const [date, time] = clockText(new Date());
    $('clock-date').textContent = date;
    $('clock-time').textContent = time;
  };
  tick();
  setInterval(tick, 1000);
}

export function createWall({ api, viewer, key, onPick, onAlerts }) {
  const wall = { alerts: [], cases: [], vitals: null, runs: [], refreshes: 0, socket: 'closed' };
  viewer.wall = wall;
  const rules = new Map();
  const names = new Map(); // "site/code" -> the object's name (or its kind)
  const boxes = new Map(); // "site/code" -> the object's box (site CRS metres)
  const units = new Map(); // datastream id -> its unit's symbol
  let picked = null; // the alert or case last clicked

  $('wall').hidden = false;
  document.body.classList.add('on-wall');

  function renderVitals() {
    const v = wall.vitals;
    if (!v) return;
    $('kpi-sensors').textContent = `${v.sensorsOnline}`;
    $('kpi-sensors-total').textContent = ` / ${v.sensors}`;
    const share = v.sensors ? v.sensorsOnline / v.sensors : 1;
    $('kpi-sensors-bar').style.width = `${Math.round(share * 100)}%`;
    $('kpi-sensors-tile').classList.toggle('warn', share < 0.9);
    const counts = v.activeAlerts || {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    $('kpi-alerts').textContent = String(total);
    const others = Object.entries(counts).filter(([s]) => !SEVERITIES.includes(s));
    $('kpi-alerts-by').replaceChildren(
      ...SEVERITIES.map((s) => {
        const cell = element('div', `sev-cell ${severityClass(s)}${counts[s] ? '' : ' zero'}`);
        cell.dataset.severity = s;
        cell.append(element('b', '', String(counts[s] || 0)), element('span', '', term('sev', s)));
        return cell;
      }),
      ...others.map(([s, n]) => {
        const cell = element('div', 'sev-cell sev-other');
        cell.dataset.severity = s;
        cell.append(element('b', '', String(n)), element('span', '', s));
        return cell;
      }),
    );
    $('kpi-cases').textContent = String(v.openCases);
    // 城市体征: the highest current value of each observed property, most reported first
    const extremes = Object.entries(v.extremes || {}).filter(([, e]) => e.max !== null)
      .sort((a, b) => b[1].reporting - a[1].reporting || a[0].localeCompare(b[0])).slice(0, 4);
    $('kpi-extremes').replaceChildren(...(extremes.length ? extremes.map(([name, e]) => {
      const row = element('tr');
      row.dataset.property = name;
      row.append(element('td', 'what', name), element('td', 'value', `${+Number(e.max).toFixed(2)}`),
        element('td', 'muted', t('reporting', { n: e.reporting })));
      return row;
    }) : [element('tr', 'muted', t('noReadings'))]));
  }

  function renderSteps() {
    const waiting = Object.fromEntries(STEPS.map((s) => [s, 0]));
    for (const c of wall.cases) if (STEP_OF[c.state]) waiting[STEP_OF[c.state]]++;
    $('kpi-cases-by').replaceChildren(...STEPS.map((s) => {
      const cell = element('div', `step-cell${waiting[s] ? '' : ' zero'}`);
      cell.dataset.step = s;
      cell.append(element('b', '', String(waiting[s])), element('span', '', term('stage', s)));
      return cell;
    }));
    const closed = wall.cases.filter((c) => c.state === 'closed').length;
    $('kpi-cases-closed').textContent = t('closedCases', { n: closed });
  }

  function renderRuns() {
    $('kpi-drills').textContent = String(wall.runsTotal || 0);
    $('kpi-drills-list').replaceChildren(...(wall.runs.length ? wall.runs.slice(0, 3).map((r) =>
      element('div', 'drill', `${r.drill} · ${r.site || t('wholeCity')} · ${Math.round(100 * (r.progress || 0))}%`))
      : [element('div', 'drill muted', t('noDrills'))]));
  }

  function objectName(site, code) {
    const known = names.get(`${site}/${code}`);
    if (known !== undefined) return known;
    names.set(`${site}/${code}`, null);
    if (site) {
      api(`/sites/${encodeURIComponent(site)}/objects/${encodeURIComponent(code)}`)
        .then((r) => r.json())
        .then((o) => {
          names.set(`${site}/${code}`, readableName(o.name) || term('kind', o.kind));
          if (o.bbox) boxes.set(`${site}/${code}`, o.bbox);
          renderAlerts();
          renderCases();
        })
        .catch(() => {});
    }
    return null;
  }

  // the unit of an alert's reading, from its datastream (read once per object)
  function unitOf(alert) {
    if (units.has(alert.datastream)) return units.get(alert.datastream);
    units.set(alert.datastream, '');
    api(`/live/state?prefix=${encodeURIComponent(alert.objectCode)}&limit=100`)
      .then((r) => r.json())
      .then((rows) => {
        for (const row of rows) {
          const u = row.unitOfMeasurement || {};
          units.set(row.datastream, u.symbol || u.name || '');
        }
        renderAlerts();
      })
      .catch(() => {});
    return '';
  }

  function pick(item, target) {
    picked = item.dataset.code;
    for (const el of document.querySelectorAll('#wall li.picked')) el.classList.remove('picked');
    item.classList.add('picked');
    onPick(target);
  }

  // the worst active alert of each object of the site on screen, for its pin in the city
  function pinAlerts() {
    if (!onAlerts) return;
    const worst = new Map();
    for (const a of wall.alerts) {
      const box = boxes.get(`${a.site}/${a.objectCode}`);
      if (a.site !== viewer.site || !box) continue;
      const rank = SEVERITIES.indexOf(a.severity) < 0 ? SEVERITIES.length : SEVERITIES.indexOf(a.severity);
      const seen = worst.get(a.objectCode);
      if (!seen || rank < seen.rank) worst.set(a.objectCode, { rank, code: a.objectCode, severity: a.severity, bbox: box });
    }
    onAlerts([...worst.values()]);
  }

  function renderAlerts() {
    pinAlerts();
    const list = $('alert-list');
    $('alert-count').textContent = String(wall.alerts.length);
    if (!wall.alerts.length) { list.replaceChildren(element('li', 'empty', t('noAlerts'))); return; }
    list.replaceChildren(...wall.alerts.map((a) => {
      const item = element('li', `alert ${severityClass(a.severity)}`);
      item.dataset.code = a.code;
      item.dataset.object = a.objectCode;
      const rule = rules.get(a.rule);
      const what = rule ? rule.name : a.kind;
      const unit = unitOf(a);
      const value = a.value === null || a.value === undefined ? '' : ` ${+Number(a.value).toFixed(2)}${unit ? ` ${unit}` : ''}`;
      const head = element('div', 'line');
      head.append(element('span', 'chip', term('sev', a.severity)), element('span', 'what', `${what}${value}`),
        element('span', 'when', timeOf(a.opened)));
      const where = objectName(a.site, a.objectCode);
      const tail = `…${a.objectCode.slice(-6)}`;
      const sub = element('div', 'sub', `${where ? `${where} ${tail}` : a.objectCode}${a.site && a.site !== viewer.site ? ` · ${a.site}` : ''}`);
      item.append(head, sub);
      if (a.code === picked) item.classList.add('picked');
      item.onclick = () => pick(item, a);
      return item;
    }));
  }

  function renderCases() {
    const list = $('case-list');
    const shown = wall.cases.filter((c) => c.state !== 'cancelled');
    $('case-count').textContent = String(shown.filter((c) => c.state !== 'closed').length);
    if (!shown.length) { list.replaceChildren(element('li', 'empty', t('noCases'))); return; }
    const now = Date.now();
    list.replaceChildren(...shown.slice(0, 12).map((c) => {
      const item = element('li', `case urgency-${c.urgency}`);
      item.dataset.code = c.code;
      const step = c.state === 'closed' ? 'closed' : STEP_OF[c.state];
      const reached = c.state === 'closed' ? STEPS.length : STEPS.indexOf(step);
      const head = element('div', 'line');
      head.append(element('span', `chip step${c.state === 'closed' ? ' done' : ''}`, term(c.state === 'closed' ? 'step' : 'stage', step)),
        element('span', 'what', c.title || c.code));
      const steps = element('div', 'steps');
      STEPS.forEach((s, i) => steps.append(element('i', i < reached ? 'done' : i === reached ? 'now' : '', term('stage', s))));
      let due = t('noDeadline'), late = false;
      if (c.state === 'closed') due = timeOf(c.closed);
      else if (c.deadline) {
        const ms = new Date(c.deadline).getTime() - now;
        late = ms < 0;
        due = `${t('deadline')} ${timeOf(c.deadline)} · ${late ? t('overdue', { t: span(ms) }) : t('left', { t: span(ms) })}`;
      }
      const where = c.objectCode ? objectName(c.site, c.objectCode) : null;
      const sub = element('div', `sub${late ? ' late' : ''}`, `${c.code.slice(-8)}${where ? ` · ${where}` : ''} · ${due}`);
      item.append(head, steps, sub);
      if (c.code === picked) item.classList.add('picked');
      if (c.objectCode) item.onclick = () => pick(item, { site: c.site, objectCode: c.objectCode });
      return item;
    }));
  }

  async function refresh() {
    const [vitals, alerts, cases, runs] = await Promise.all([
      api('/live/vitals').then((r) => r.json()),
      api('/alerts?state=active').then((r) => r.json()),
      api('/cases').then((r) => r.json()),
      api('/runs?state=running').then((r) => r.json()).catch(() => ({ runs: [], total: 0 })),
    ]);
    if (alerts.some((a) => !rules.has(a.rule))) {
      for (const rule of await api('/rules').then((r) => r.json())) rules.set(rule.id, rule);
    }
    Object.assign(wall, { vitals, alerts, cases, runs: runs.runs, runsTotal: runs.total });
    renderVitals();
    renderSteps();
    renderRuns();
    renderAlerts();
    renderCases();
    wall.refreshes++;
  }

  let pending = null;
  function refreshSoon(delay = 250) {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, delay);
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/live/ws?kind=alert&kind=case`);
    socket.onopen = () => { socket.send(JSON.stringify({ key })); };
    socket.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (!Array.isArray(data)) {
        if (data.type === 'subscribed') { wall.socket = 'open'; $('live-dot').className = 'on'; $('live-dot').title = t('live'); }
        return;
      }
      if (data.some((e) => e.type === 'alert' || e.type === 'case')) refreshSoon();
    };
    socket.onclose = (event) => {
      wall.socket = 'closed';
      $('live-dot').className = 'off';
      $('live-dot').title = t('offline');
      if (event.code >= 4400) return; // refused: do not hammer the server
      setTimeout(connect, 3000);
    };
  }

  connect();
  const started = refresh();
  setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  setInterval(renderCases, 30000); // deadlines count down
  return { refresh, started, pinAlerts };
}

// --- north arrow and scale bar --------------------------------------------------------------
const NICE = [1, 2, 5];
const probe = new THREE.Vector3(), centre = new THREE.Vector3();
let lastAngle = null, lastScale = null;

function niceLength(maxMetres) {
  const power = 10 ** Math.floor(Math.log10(maxMetres));
  let best = power;
  for (const n of NICE) if (n * power <= maxMetres) best = n * power;
  return best;
}

// called every frame: rotate the arrow to the screen direction of north (three.js -z), size
// the bar to a round length at the distance of the orbit target
export function updateOverlay(camera, target) {
  const arrow = $('compass-needle');
  if (!arrow) return;
  const distance = camera.position.distanceTo(target);
  centre.copy(target).project(camera);
  probe.copy(target).add(new THREE.Vector3(0, 0, -Math.max(1, distance * 0.05))).project(camera);
  const angle = Math.atan2(probe.x - centre.x, (probe.y - centre.y) / camera.aspect) * (180 / Math.PI);
  if (lastAngle === null || Math.abs(angle - lastAngle) > 0.3) {
    arrow.style.transform = `rotate(${angle.toFixed(1)}deg)`;
    lastAngle = angle;
  }
  const metresPerPixel = (2 * distance * Math.tan((camera.fov * Math.PI) / 360)) / window.innerHeight;
  const metres = niceLength(metresPerPixel * 220);
  const width = Math.round(metres / metresPerPixel);
  const key = `${metres}/${width}`;
  if (key === lastScale) return;
  lastScale = key;
  $('scale-bar').style.width = `${width}px`;
  $('scale-text').textContent = metres >= 1000 ? t('kilometres', { n: metres / 1000 }) : t('metres', { n: metres });
}
