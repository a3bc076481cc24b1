// The wall-display viewer: a site's 3D Tiles, orbit, pick a building, colour by a live layer;
// around it the operations wall (wall.js) for admin, planner and display keys, a unit page
// for a pilot key. Chinese first, `?lang=en` for English (i18n.js).
//
// Data comes from the API with the key in an X-API-Key header (tiles included); value layers
// arrive over /sites/{site}/layers/live. `window.twinViewer` exposes the state for the
// browser tests and for operators' scripts.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { TilesRenderer } from '3d-tiles-renderer';
import { GLTFExtensionsPlugin } from '3d-tiles-renderer/plugins';
import { t, term, translatePage, otherLanguageUrl } from './i18n.js';
import { createWall, readableName, startClock, updateOverlay } from './wall.js';
import { SEVERITY_COLOURS, alertPinGroup, label } from './sprites.js';

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const KIND_COLOURS = {
  Building: 0xd9dde3, BuildingPart: 0xd9dde3, Bridge: 0xa0a8b8, Road: 0x555d6b,
  WaterBody: 0x3d7fc4, PlantCover: 0x5b9e5b, SolitaryVegetationObject: 0x4f8f4f,
  TINRelief: 0x8a9a6b, Terrain: 0x8a9a6b, LandUse: 0xb9b48f,
};
const RAMP = [[44, 123, 182], [171, 217, 233], [255, 255, 191], [253, 174, 97], [215, 25, 28]];

const viewer = {
  ready: false, site: null, tilesLoaded: 0, tileRequests: 0, selected: null,
  layer: null, coloured: 0, error: null, origin: null, unit: false, zones: 0, unitCode: null,
  dashboard: null, snapshotBytes: 0, markers: [], evacuation: null, wall: null, flights: 0, frames: 0, highlight: null, highlighted: 0,
  alertPins: 0,
};
window.twinViewer = viewer;

function takeKey() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get('key');
  if (fromHash) {
    localStorage.setItem('twin.key', fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return localStorage.getItem('twin.key');
}

let key = takeKey();

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { 'X-API-Key': key, ...(options.headers || {}) } });
  if (response.status === 401) throw Object.assign(new Error(t('badKey')), { status: 401 });
  if (!response.ok && response.status !== 202) {
    let message = `${response.status}`;
    try { message = (await response.json()).error.message; } catch { /* not JSON */ }
    throw Object.assign(new Error(message), { status: response.status });
  }
  return response;
}

function status(text) { $('status').textContent = text; }

function askForKey(message) {
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('login').onsubmit = (event) => {
    event.preventDefault();
    key = $('key').value.trim();
    localStorage.setItem('twin.key', key);
    $('login').hidden = true;
    start();
  };
}

// --- three.js scene ---------------------------------------------------------------------
const canvas = $('scene');
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
renderer.setClearColor(0x0b1220);
const scene = new THREE.Scene();
const camera = new THREE.PerspectiveCamera(50, 1, 1, 200000);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = true;
scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 2.2));
const sun = new THREE.DirectionalLight(0xffffff, 1.6);
sun.position.set(0.5, 1, 0.3);
scene.add(sun);
const world = new THREE.Group(); // tileset frame (ECEF) -> local ENU, y up
world.matrixAutoUpdate = false;
scene.add(world);
let tiles = null;
let socket = null;

function resize() {
  const w = window.innerWidth, h = window.innerHeight;
  renderer.setSize(w, h, false);
  invalidate();
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  if (tiles) tiles.setResolutionFromRenderer(camera, renderer);
}
window.addEventListener('resize', resize);

// drawn when something changed (the camera, a tile, a colour), and twice a second anyway: a
// still wall costs a software renderer almost nothing, so picking and the lists stay quick
let needsRender = true, renderedAt = 0;
const invalidate = () => { needsRender = true; };
controls.addEventListener('change', invalidate);
function frame(now) {
  requestAnimationFrame(frame);
  controls.update();
  updateFlight();
  updateOverlay(camera, controls.target);
  if (tiles) {
    camera.updateMatrixWorld();
    tiles.update();
  }
  if (!needsRender && now - renderedAt < 500) return;
  needsRender = false;
  renderedAt = now;
  renderer.render(scene, camera);
  viewer.frames++;
}

// ENU (east, north, up) metres -> three.js (x, y up, z south)
const ENU_TO_THREE = new THREE.Matrix4().set(1, 0, 0, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 0, 0, 1);

function colourOf(value, min, max) {
  const t = max > min ? Math.min(1, Math.max(0, (value - min) / (max - min))) : 0.5;
  const x = t * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  return RAMP[i].map((c, k) => (c + (RAMP[i + 1][k] - c) * f) / 255);
}

// the codes of a mesh's features (feature id -> row of its property table)
function featureCodes(mesh) {
  if (mesh.userData.twinCodes) return mesh.userData.twinCodes;
  const features = mesh.userData.meshFeatures, metadata = mesh.userData.structuralMetadata;
  const ids = mesh.geometry.getAttribute('_feature_id_0');
  if (!features || !metadata || !ids) return null;
  const info = features.getFeatureInfo()[0];
  let count = 0;
  for (let i = 0; i < ids.count; i++) count = Math.max(count, ids.getX(i) + 1);
  const idList = [...Array(count).keys()];
  const rows = metadata.getPropertyTableData(idList.map(() => info.propertyTable), idList);
  mesh.userData.twinCodes = rows.map((row) => (row ? row.code : null));
  return mesh.userData.twinCodes;
}

// the picked object, drawn in the wall's accent colour over any layer
const HIGHLIGHT = [0.21, 0.77, 0.94];

function paint(root) {
  const layer = viewer.layer, picked = viewer.highlight;
  root.traverse((mesh) => {
    if (!mesh.isMesh) return;
    const codes = featureCodes(mesh);
    const ids = mesh.geometry.getAttribute('_feature_id_0');
    if (!mesh.userData.twinMaterial) {
      mesh.userData.twinMaterial = mesh.material;
      mesh.material = mesh.material.clone();
    }
    const holdsPicked = picked && codes && codes.includes(picked);
    if (!codes || !ids || (!layer && !holdsPicked)) {
      mesh.material.vertexColors = false;
      mesh.material.color.copy(mesh.userData.twinMaterial.color);
      mesh.material.needsUpdate = true;
      return;
    }
    const colours = new Float32Array(ids.count * 3);
    let hit = 0;
    const grey = layer ? [0.45, 0.48, 0.52] : mesh.userData.twinMaterial.color.toArray();
    for (let i = 0; i < ids.count; i++) {
      const code = codes[ids.getX(i)];
      const value = layer ? layer.values[code] : undefined;
      const c = code === picked ? HIGHLIGHT : value === undefined ? grey : colourOf(value, layer.min, layer.max);
      if (value !== undefined) hit++;
      colours.set(c, i * 3);
    }
    mesh.geometry.setAttribute('color', new THREE.BufferAttribute(colours, 3));
    mesh.material.vertexColors = true;
    mesh.material.color.set(0xffffff);
    mesh.material.needsUpdate = true;
    if (hit) viewer.coloured++;
    if (holdsPicked) viewer.highlighted++;
  });
}

function showLegend() {
  const layer = viewer.layer;
  $('legend').hidden = !layer;
  if (!layer) return;
  $('legend-title').textContent = `${layer.name}${layer.legend ? ' · ' + layer.legend : ''}`;
  $('legend-unit').textContent = layer.unit ? t('unitOf', { u: layer.unit }) : t('legendNoUnit');
  const fmt = (v) => (v === null ? '–' : `${+v.toFixed(2)}${layer.unit ? ' ' + layer.unit : ''}`);
  $('legend-min').textContent = fmt(layer.min);
  $('legend-max').textContent = fmt(layer.max);
}

// unit scenes (a GLB per object, no feature ids): a mesh takes the value of the nearest
// object above it that the layer holds
function paintUnit(root) {
  const layer = viewer.layer;
  root.traverse((mesh) => {
    if (!mesh.isMesh) return;
    let value;
    for (let o = mesh; o && value === undefined; o = o.parent) {
      if (layer && o.userData && o.userData.code) value = layer.values[o.userData.code];
    }
    if (mesh.userData.kindColour === undefined) mesh.userData.kindColour = mesh.material.color.getHex();
    if (value === undefined) mesh.material.color.setHex(mesh.userData.kindColour);
    else {
      mesh.material.color.setRGB(...colourOf(value, layer.min, layer.max));
      viewer.coloured++;
    }
  });
}

function applyLayer() {
  invalidate();
  viewer.coloured = 0;
  viewer.highlighted = 0;
  if (tiles) paint(tiles.group);
  if (unitScene) paintUnit(unitScene);
  showLegend();
  if (viewer.selected) showValue(viewer.selected.code);
}

const layers = new Map();
function onLayerMessage(message) {
  if (message.type === 'layer') {
    layers.set(message.layer.name, message.layer);
  } else if (message.type === 'deleted') {
    layers.delete(message.name);
  } else {
    return;
  }
  const select = $('layer'), wanted = select.value || query.get('layer') || '';
  select.replaceChildren(new Option(t('colourByKind'), ''));
  for (const name of [...layers.keys()].sort()) select.add(new Option(name, name));
  select.value = layers.has(wanted) ? wanted : '';
  viewer.layer = layers.get(select.value) || null;
  applyLayer();
}
$('layer').onchange = () => { viewer.layer = layers.get($('layer').value) || null; applyLayer(); };

function subscribe(site) {
  if (socket) socket.close();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${location.host}/sites/${encodeURIComponent(site)}/layers/live`);
  socket.onopen = () => socket.send(JSON.stringify({ key }));
  socket.onmessage = (event) => onLayerMessage(JSON.parse(event.data));
  socket.onclose = (event) => {
    if (event.code >= 4400) return; // refused: do not hammer the server
    setTimeout(() => { if (viewer.site === site) subscribe(site); }, 3000);
  };
}

// --- picking ------------------------------------------------------------------------------
const raycaster = new THREE.Raycaster();
const triangle = new THREE.Triangle();
const barycoord = new THREE.Vector3();

function codeAt(hit) {
  const mesh = hit.object;
  const codes = featureCodes(mesh);
  const features = mesh.userData.meshFeatures;
  if (codes && features && hit.face) {
    const pos = mesh.geometry.getAttribute('position');
    triangle.setFromAttributeAndIndices(pos, hit.face.a, hit.face.b, hit.face.c);
    triangle.a.applyMatrix4(mesh.matrixWorld);
    triangle.b.applyMatrix4(mesh.matrixWorld);
    triangle.c.applyMatrix4(mesh.matrixWorld);
    triangle.getBarycoord(hit.point, barycoord);
    const [id] = features.getFeatures(hit.faceIndex, barycoord);
    if (id !== null && id !== undefined && codes[id]) return codes[id];
  }
  for (let o = mesh; o; o = o.parent) if (o.userData && o.userData.code) return o.userData.code;
  return null;
}

function showValue(code) {
  const layer = viewer.layer;
  const value = layer ? layer.values[code] : undefined;
  $('selected-value').textContent = value === undefined ? '' : `${layer.name}: ${value}${layer.unit ? ' ' + layer.unit : ''}`;
}

async function select(code) {
  viewer.selected = { code };
  viewer.highlight = code;
  applyLayer();
  $('panel').hidden = false;
  $('selected-code').textContent = code;
  $('selected-name').textContent = '…';
  $('selected-kind').textContent = '';
  showValue(code);
  const detail = await (await api(`/sites/${encodeURIComponent(viewer.site)}/objects/${encodeURIComponent(code)}`)).json();
  if (viewer.selected.code !== code) return;
  viewer.selected = detail;
  $('selected-name').textContent = readableName(detail.name) || term('kind', detail.kind);
  $('selected-kind').textContent = readableName(detail.name) ? term('kind', detail.kind) : '';
  const list = $('selected-attributes');
  list.replaceChildren();
  for (const [name, value] of Object.entries(detail.attributes || {})) {
    if (value === null || typeof value === 'object') continue;
    list.append(Object.assign(document.createElement('dt'), { textContent: name }));
    list.append(Object.assign(document.createElement('dd'), { textContent: String(value) }));
  }
}

let downAt = null;
canvas.addEventListener('pointerdown', (e) => { downAt = [e.clientX, e.clientY]; });
canvas.addEventListener('pointerup', (e) => {
  if (!downAt || Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]) > 5 || !(tiles || unitScene || crowdScene)) return;
  const ndc = new THREE.Vector2((e.clientX / window.innerWidth) * 2 - 1, -(e.clientY / window.innerHeight) * 2 + 1);
  raycaster.setFromCamera(ndc, camera);
  const [hit] = raycaster.intersectObject(tiles ? tiles.group : unitScene || crowdScene, true);
  if (hit && hit.object.userData.zone) { showZone(hit.object.userData.zone); return; }
  const code = hit ? codeAt(hit) : null;
  if (code) select(code).catch((err) => status(err.message));
  else {
    viewer.selected = null;
    viewer.highlight = null;
    $('panel').hidden = true;
    applyLayer();
  }
});

// site CRS metres -> CSS pixels on screen (for tests and overlays)
viewer.project = (x, y, z) => {
  const [ox, oy, oz] = viewer.origin;
  const p = new THREE.Vector3(x - ox, z - oz, -(y - oy)).project(camera);
  return [((p.x + 1) / 2) * window.innerWidth, ((1 - p.y) / 2) * window.innerHeight];
};

// --- loading a site -------------------------------------------------------------------------
async function tilesetUrl(site) {
  const url = `/sites/${encodeURIComponent(site)}/tiles/tileset.json`;
  for (;;) {
    const response = await api(url);
    if (response.status !== 202) return [url, await response.json()];
    const job = await response.json();
    status(t('buildingTiles', { p: Math.round((job.progress || 0) * 100), m: job.message || '' }));
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

function frameCamera(info) {
  const [minx, miny, , maxx, maxy] = info.bbox; // (minx, miny, minz, maxx, maxy, maxz)
  const [ox, oy] = viewer.origin;
  const cx = (minx + maxx) / 2 - ox, cy = (miny + maxy) / 2 - oy;
  const radius = Math.max(50, Math.hypot(maxx - minx, maxy - miny) / 2);
  controls.target.set(cx, 0, -cy);
  if (query.get('view') === 'top') camera.position.set(cx, radius * 2.2, -cy + 0.01);
  // oblique, close enough that the city fills the space between the wall's columns
  else camera.position.set(cx + radius * 0.65, radius * 0.95, -cy + radius * 1.0);
  camera.near = Math.max(0.5, radius / 2000);
  camera.far = radius * 20;
  camera.updateProjectionMatrix();
  controls.update();
}

// A pilot sees its unit only: no site tileset, the unit's GLB instead (y-up around the same
// ENU origin, so it sits in the scene as the tiles would).
let unitScene = null;
async function loadUnit(site, info, code = null) {
  const path = code ? `/objects/${encodeURIComponent(code)}/scene.glb` : '/scene.glb';
  const response = await api(`/sites/${encodeURIComponent(site)}${path}`);
  const gltf = await new GLTFLoader().parseAsync(await response.arrayBuffer(), '');
  if (unitScene) scene.remove(unitScene);
  unitScene = gltf.scene;
  unitScene.traverse((m) => {
    if (m.isMesh) {
      m.material = m.material.clone();
      let kind = null;
      for (let o = m; o && !kind; o = o.parent) kind = o.userData && o.userData.kind;
      m.material.color.setHex(KIND_COLOURS[kind] || 0xcccccc);
    }
  });
  scene.add(unitScene);
  invalidate();
  const box = new THREE.Box3().setFromObject(unitScene);
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(20, box.getSize(new THREE.Vector3()).length() / 2);
  controls.target.copy(centre);
  if (query.get('view') === 'top') camera.position.set(centre.x, centre.y + radius * 2.5, centre.z + 0.01);
  else camera.position.set(centre.x + radius * 1.6, centre.y + radius * 1.4, centre.z + radius * 1.8);
  camera.near = Math.max(0.1, radius / 2000);
  camera.far = radius * 50;
  camera.updateProjectionMatrix();
  viewer.unit = true;
  viewer.tilesLoaded = 1;
  applyLayer();
  placeMarkers();
  if (!viewer.unitCode) {
    let root = null;
    unitScene.traverse((o) => { if (!root && o.userData && o.userData.code) root = o.userData.code; });
    viewer.unitCode = root;
    await refreshUnit(site, true);
    setInterval(() => refreshUnit(site, false).catch(() => {}), 5000);
  }
  viewer.ready = true;
  status(`${t('yourUnit', { site })}${code ? ' · ' + code : ''}`);
}

// sensors drawn in their rooms: a pin above each sensor's object with its latest value —
// red where the object has an active alert, green when online, grey when silent
let markerGroup = null;

function placeMarkers() {
  if (markerGroup) { scene.remove(markerGroup); markerGroup = null; }
  viewer.markers = [];
  const board = viewer.dashboard;
  if (!unitScene || !board) return;
  const nodes = new Map();
  unitScene.traverse((o) => { if (o.userData && o.userData.code) nodes.set(o.userData.code, o); });
  const alerted = new Map();
  for (const a of board.alerts || []) {
    if (!alerted.has(a.objectCode)) alerted.set(a.objectCode, a.severity);
  }
  markerGroup = new THREE.Group();
  const seen = new Map();
  for (const sensor of board.sensorList || []) {
    const node = nodes.get(sensor.code);
    if (!node) continue;  // in another storey than the one shown
    const box = new THREE.Box3().setFromObject(node);
    if (box.isEmpty()) continue;
    const n = seen.get(sensor.code) || 0;
    seen.set(sensor.code, n + 1);
    const severity = alerted.get(sensor.code);
    const colour = severity ? (SEVERITY_COLOURS[severity] || 0xd7191c) : (sensor.online ? 0x1a9850 : 0x8c8c8c);
    const top = new THREE.Vector3((box.min.x + box.max.x) / 2, (box.min.y + box.max.y) / 2 + n * 0.8, (box.min.z + box.max.z) / 2);
    const pin = new THREE.Sprite(new THREE.SpriteMaterial({ color: colour, depthTest: false, sizeAttenuation: false }));
    pin.scale.set(0.018, 0.018, 1);
    pin.renderOrder = 2;
    pin.position.copy(top);
    pin.userData = { code: sensor.code, sensor: sensor.datastream };
    const unit = sensor.unit && sensor.unit.length <= 4 ? ` ${sensor.unit}` : '';
    const value = sensor.value === null ? '–' : `${+sensor.value.toFixed(1)}${unit}`;
    const tag = label(value, colour);
    tag.position.copy(top);
    markerGroup.add(pin, tag);
    viewer.markers.push({ code: sensor.code, datastream: sensor.datastream, colour, severity: severity || null });
  }
  scene.add(markerGroup);
  invalidate();
}

// the unit page: vital signs, open cases, storeys, a snapshot per storey
async function refreshUnit(site, first) {
  if (!viewer.unitCode) return;
  const board = await (await api(`/sites/${encodeURIComponent(site)}/units/${encodeURIComponent(viewer.unitCode)}/dashboard`)).json();
  viewer.dashboard = board;
  $('unit').hidden = false;
  $('unit-name').textContent = readableName(board.unit.name) || term('kind', board.unit.kind || '') || board.unit.code;
  $('unit-occupancy').textContent = board.occupancy === null ? '–' : String(Math.round(board.occupancy));
  $('unit-sensors').textContent = `${board.sensorsOnline} / ${board.sensors}`;
  const alerts = Object.entries(board.activeAlerts).map(([k, v]) => `${v} ${term('sev', k)}`).join(', ');
  $('unit-alerts').textContent = alerts || t('none');
  $('unit-cases').textContent = String(board.openCases);
  $('unit-case-list').replaceChildren(...board.cases.slice(0, 5).map((c) => Object.assign(document.createElement('li'), { textContent: `${c.code} · ${term('step', c.state)} · ${c.title || ''}` })));
  placeMarkers();
  if (!first) return;
  const storey = $('storey');
  storey.replaceChildren(new Option(t('wholeUnit'), ''), ...board.storeys.map((s) => new Option(s.name || s.code, s.code)));
  storey.hidden = board.storeys.length === 0;
  storey.onchange = () => loadUnit(site, null, storey.value || null).catch(fail);
  $('evacuate').onclick = () => evacuate(site).catch(fail);
  $('snapshot').hidden = false;
  $('snapshot').onclick = async () => {
    const code = storey.value || viewer.unitCode;
    const png = await (await api(`/sites/${encodeURIComponent(site)}/image.png?code=${encodeURIComponent(code)}&width=1600&height=1000`)).blob();
    viewer.snapshotBytes = png.size;
    window.open(URL.createObjectURL(png), '_blank');
  };
}

// the unit's evacuation drill: live people counts where the rooms have counters, else
// 0.2 persons/m²; the result lists per-storey times and the bottleneck doors and stairs,
// and the rooms are coloured by their peak density (the layer the drill leaves)
async function evacuate(site) {
  const button = $('evacuate');
  button.disabled = true;
  try {
    const board = viewer.dashboard;
    const body = { site, building: viewer.unitCode };
    if (board && board.sensorsOnline > 0 && board.occupancy) body.live = true;
    else body.load_pm2 = 0.2;
    const started = await api('/drills/evacuation', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    let job = await started.json();
    // poll while the run is under way; any end (succeeded, failed, cancelled, interrupted) stops
    while (job.state === 'queued' || job.state === 'running') {
      button.textContent = t('evacuating', { p: Math.round(100 * (job.progress || 0)) });
      await new Promise((r) => setTimeout(r, 300));
      job = await (await api(`/runs/${job.id}`)).json();
    }
    if (job.state !== 'succeeded') throw new Error(`evacuation drill ${job.state}: ${(job.error && job.error.message) || ''}`);
    const result = job.result;
    viewer.evacuation = result;
    const s = result.summary;
    $('evacuation').hidden = false;
    const secs = (v) => (v === null || v === undefined ? '—' : t('seconds', { s: v }));
    const left = s.people - s.out;
    $('evacuation-total').textContent = `${t('out', { out: s.out, all: s.people })} · T100 ${s.t100_s == null && left > 0 ? `—${t('notOut', { n: left })}` : secs(s.t100_s)} · T90 ${secs(s.t90_s)}`;
    $('evacuation-storeys').replaceChildren(...result.storeys.map((st) => Object.assign(
      document.createElement('li'), { textContent: `${t('storeyLine', { name: st.name, people: st.people, s: st.out_s })}${st.trapped ? t('trapped', { n: st.trapped }) : ''}` })));
    $('evacuation-bottlenecks').replaceChildren(...s.bottlenecks.slice(0, 3).map((b) => Object.assign(
      document.createElement('li'), { textContent: `${term('kind', b.kind)} …${b.code.slice(-6)} · ${t('queue', { n: b.peak_queue })}` })));
    // the drill leaves its layer on the site; it arrives over the layer stream
    for (let i = 0; i < 50 && !layers.has('evacuation-density'); i++) await new Promise((r) => setTimeout(r, 100));
    if (layers.has('evacuation-density')) {
      $('layer').value = 'evacuation-density';
      $('layer').dispatchEvent(new Event('change'));
    }
  } finally {
    button.disabled = false;
    button.textContent = t('evacuate');
  }
}

async function loadSite(site) {
  viewer.ready = false;
  viewer.site = site;
  viewer.tilesLoaded = 0;
  if (tiles) { world.remove(tiles.group); tiles.dispose(); tiles = null; }
  if (unitScene) { scene.remove(unitScene); unitScene = null; }
  if (markerGroup) { scene.remove(markerGroup); markerGroup = null; }
  if (alertPins) { scene.remove(alertPins); alertPins = null; }
  const info = await (await api(`/sites/${encodeURIComponent(site)}`)).json();
  viewer.origin = info.enu_origin;
  status(t('loadingTiles', { site }));
  let found;
  try {
    found = await tilesetUrl(site);
  } catch (err) {
    if (err.status !== 403) throw err;
    await loadUnit(site, info);
    subscribe(site);
    return;
  }
  const [url, tileset] = found;
  const rootTransform = new THREE.Matrix4();
  if (tileset.root.transform) rootTransform.fromArray(tileset.root.transform);
  world.matrix.copy(ENU_TO_THREE).multiply(rootTransform.invert());
  world.matrixWorldNeedsUpdate = true;
  tiles = new TilesRenderer(url);
  tiles.fetchOptions = { headers: { 'X-API-Key': key } };
  tiles.registerPlugin(new GLTFExtensionsPlugin({ metadata: true, rtc: true }));
  tiles.setCamera(camera);
  tiles.setResolutionFromRenderer(camera, renderer);
  tiles.addEventListener('load-model', ({ scene: model }) => {
    viewer.tilesLoaded++;
    for (const o of model.children) o.traverse((m) => {
      if (m.isMesh && !m.geometry.getAttribute('_feature_id_0') && m.userData.kind) {
        m.material = m.material.clone();
        m.material.color.setHex(KIND_COLOURS[m.userData.kind] || 0xcccccc);
      }
    });
    paint(model);
    invalidate();
    status(t('tiles', { site, n: viewer.tilesLoaded }));
  });
  tiles.addEventListener('tiles-load-end', () => { viewer.ready = true; invalidate(); });
  for (const change of ['needs-render', 'tile-visibility-change', 'dispose-model']) tiles.addEventListener(change, invalidate);
  world.add(tiles.group);
  frameCamera(info);
  subscribe(site);
}

// A crowd drill's result: its zones as tiles coloured by peak density (0..6 persons/m²),
// pickable (zone, peak density, Fruin level of service, seconds above each alert level).
const CROWD_MAX_PM2 = 6;
let crowdScene = null;
async function loadCrowd(jobId) {
  const job = await (await api(`/runs/${encodeURIComponent(jobId)}`)).json();
  if (job.state === 'queued' || job.state === 'running') {
    status(t('crowd', { state: job.state, p: Math.round((job.progress || 0) * 100) }));
    setTimeout(() => loadCrowd(jobId).catch(fail), 1000);
    return;
  }
  if (job.state !== 'succeeded') {
    status(`crowd drill ${job.state}: ${job.message || (job.error && job.error.message) || ''}`);
    return;
  }
  const zones = job.result.zones || [];
  crowdScene = new THREE.Group();
  const box = new THREE.Box3();
  for (const zone of zones) {
    const [x0, y0, x1, y1] = zone.bbox;
    const height = 0.2 + 2 * Math.min(zone.max_density_pm2, CROWD_MAX_PM2);
    const mesh = new THREE.Mesh(
      new THREE.BoxGeometry(Math.max(x1 - x0 - 0.3, 0.1), height, Math.max(y1 - y0 - 0.3, 0.1)),
      new THREE.MeshLambertMaterial({ color: new THREE.Color(...colourOf(zone.max_density_pm2, 0, CROWD_MAX_PM2)) }),
    );
    mesh.position.set((x0 + x1) / 2, height / 2, -(y0 + y1) / 2);
    mesh.userData = { code: zone.zone, zone };
    crowdScene.add(mesh);
    box.expandByObject(mesh);
  }
  scene.add(crowdScene);
  invalidate();
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(20, box.getSize(new THREE.Vector3()).length() / 2);
  controls.target.copy(centre);
  if (query.get('view') === 'top') camera.position.set(centre.x, radius * 2.2, centre.z + 0.01);
  else camera.position.set(centre.x + radius * 0.6, radius * 1.2, centre.z + radius * 1.2);
  camera.near = Math.max(0.1, radius / 2000);
  camera.far = radius * 50;
  camera.updateProjectionMatrix();
  viewer.origin = [0, 0, 0];
  viewer.layer = { name: t('peakDensity'), legend: t('crowdLegend'), unit: 'P/m²', min: 0, max: CROWD_MAX_PM2, values: {} };
  for (const zone of zones) viewer.layer.values[zone.zone] = zone.max_density_pm2;
  showLegend();
  viewer.zones = zones.length;
  viewer.ready = true;
  const s = job.result.summary || {};
  status(t('crowdDone', { agents: s.agents, t: s.evacuation_time_s, d: s.max_density_pm2 }));
}

function showZone(zone) {
  viewer.selected = { code: zone.zone };
  $('panel').hidden = false;
  $('selected-code').textContent = zone.zone;
  $('selected-name').textContent = t('zone', { z: zone.zone });
  $('selected-kind').textContent = t('fruin', { l: zone.fruin_level });
  $('selected-value').textContent = t('peak', { d: zone.max_density_pm2 });
  const list = $('selected-attributes');
  list.replaceChildren();
  for (const [level, seconds] of Object.entries(zone.seconds_above || {})) {
    list.append(Object.assign(document.createElement('dt'), { textContent: t('above', { l: level }) }));
    list.append(Object.assign(document.createElement('dd'), { textContent: t('seconds', { s: seconds }) }));
  }
}

// the site asked for, or the one with the most buildings
function landingSite(sites, wanted) {
  if (sites.some((s) => s.name === wanted)) return wanted;
  const buildings = (s) => (s.objects && (s.objects.Building || 0) + (s.objects.IfcBuilding || 0)) || 0;
  return sites.reduce((best, s) => (buildings(s) > buildings(best) ? s : best), sites[0]).name;
}

// a short flight of the orbit target and camera to an object's box, then the object picked
let flight = null;
function updateFlight() {
  if (!flight) return;
  const f = Math.min(1, (performance.now() - flight.start) / flight.ms), e = f * f * (3 - 2 * f);
  invalidate();
  controls.target.lerpVectors(flight.fromTarget, flight.toTarget, e);
  camera.position.lerpVectors(flight.fromCamera, flight.toCamera, e);
  if (f >= 1) { flight = null; viewer.flights++; }
}

async function flyToObject(site, code) {
  if (site && site !== viewer.site) {
    $('site').value = site;
    await loadSite(site);
    if (wall) wall.pinAlerts();
  }
  const detail = await (await api(`/sites/${encodeURIComponent(viewer.site)}/objects/${encodeURIComponent(code)}`)).json();
  if (detail.bbox && viewer.origin) {
    const [minx, miny, minz, maxx, maxy, maxz] = detail.bbox;
    const [ox, oy, oz] = viewer.origin;
    const centre = new THREE.Vector3((minx + maxx) / 2 - ox, (minz + maxz) / 2 - oz, -((miny + maxy) / 2 - oy));
    const size = Math.max(60, Math.hypot(maxx - minx, maxy - miny, maxz - minz));
    const from = camera.position.clone().sub(controls.target).normalize();
    if (from.y < 0.35) from.setY(0.35).normalize();
    flight = {
      start: performance.now(), ms: 1200,
      fromTarget: controls.target.clone(), toTarget: centre,
      fromCamera: camera.position.clone(), toCamera: centre.clone().addScaledVector(from, size * 3),
    };
  }
  await select(code);
}
viewer.flyTo = (site, code) => flyToObject(site, code);

// the wall's pins over alerted objects (sprites.js)
let alertPins = null;
function placeAlertPins(pins) {
  if (alertPins) { scene.remove(alertPins); alertPins = null; }
  viewer.alertPins = 0;
  if (!viewer.origin || unitScene) return;
  alertPins = alertPinGroup(pins, viewer.origin);
  viewer.alertPins = pins.length;
  scene.add(alertPins);
  invalidate();
}

let wall = null;
async function start() {
  if (!key) { askForKey(); return; }
  if (query.get('crowd')) { loadCrowd(query.get('crowd')).catch(fail); return; }
  try {
    const sites = await (await api('/sites')).json();
    const select = $('site');
    select.replaceChildren(...sites.map((s) => new Option(s.name, s.name)));
    if (!sites.length) { status(t('noSites')); return; }
    select.value = landingSite(sites, query.get('site'));
    select.onchange = () => loadSite(select.value).then(() => wall && wall.pinAlerts()).catch(fail);
    await loadSite(select.value);
    if (!viewer.unit && !wall) {
      wall = createWall({
        api, viewer, key, onAlerts: placeAlertPins,
        onPick: (a) => flyToObject(a.site, a.objectCode).catch(fail),
      });
    }
  } catch (err) { fail(err); }
}

function fail(err) {
  viewer.error = err.message;
  if (err.status === 401) { localStorage.removeItem('twin.key'); askForKey(err.message); return; }
  status(t('error', { m: err.message }));
}

translatePage();
startClock();
$('lang').href = otherLanguageUrl();
resize();
frame(0);
start();
