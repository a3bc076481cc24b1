// Sprites drawn over the city at a fixed size on screen, in front of the walls: the unit
// page's sensor tags and the wall's pins over alerted objects.
import * as THREE from 'three';

// the wall's severity colours (viewer.css --red, --orange, --yellow, --blue)
export const SEVERITY_COLOURS = { red: 0xe5322d, orange: 0xf28c28, yellow: 0xf2c500, blue: 0x2f7fd8 };
const SILENT = 0x8c8c8c;

const hex = (colour) => `#${colour.toString(16).padStart(6, '0')}`;

function texture(canvas) {
  const map = new THREE.CanvasTexture(canvas);
  map.colorSpace = THREE.SRGBColorSpace; // the canvas holds sRGB: drawn as painted
  return map;
}

function sprite(map) {
  return new THREE.Sprite(new THREE.SpriteMaterial({ map, depthTest: false, sizeAttenuation: false }));
}

// a sensor's tag: its value on a dark card with a bar of its colour, legible at wall
// distance from any zoom
export function label(text, colour) {
  const canvas = document.createElement('canvas');
  canvas.width = 256; canvas.height = 64;
  const g = canvas.getContext('2d');
  g.fillStyle = 'rgba(16, 20, 28, 0.8)';
  g.fillRect(0, 0, 256, 64);
  g.fillStyle = hex(colour);
  g.fillRect(0, 0, 8, 64);
  g.fillStyle = '#ffffff';
  g.font = "bold 34px 'Noto Sans SC', sans-serif";
  g.textBaseline = 'middle';
  g.fillText(text, 18, 34, 230);
  const tag = sprite(texture(canvas));
  tag.scale.set(0.16, 0.04, 1);
  tag.center.set(0, -0.4);
  tag.renderOrder = 2;
  return tag;
}

const pinTextures = new Map(); // one per severity, shared by its pins
function pinTexture(severity) {
  if (pinTextures.has(severity)) return pinTextures.get(severity);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 64;
  const g = canvas.getContext('2d');
  g.beginPath(); g.arc(32, 32, 26, 0, 2 * Math.PI);
  g.fillStyle = hex(SEVERITY_COLOURS[severity] || SILENT);
  g.fill();
  g.lineWidth = 7; g.strokeStyle = '#ffffff'; g.stroke();
  const map = texture(canvas);
  pinTextures.set(severity, map);
  return map;
}

// a pin over each of `pins` ({severity, bbox} with the box in site CRS metres), standing on
// the box's top; `origin` is the site's ENU origin (three.js: x east, y up, z south)
export function alertPinGroup(pins, origin) {
  const [ox, oy, oz] = origin;
  const group = new THREE.Group();
  for (const pin of pins) {
    const [minx, miny, , maxx, maxy, maxz] = pin.bbox;
    const marker = sprite(pinTexture(pin.severity));
    marker.scale.set(0.028, 0.028, 1);
    marker.center.set(0.5, 0);
    marker.renderOrder = 3;
    marker.position.set((minx + maxx) / 2 - ox, maxz - oz + 2, -((miny + maxy) / 2 - oy));
    group.add(marker);
  }
  return group;
}
