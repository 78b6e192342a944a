"""The web view's two pages, plain HTML with a little JavaScript that polls the JSON API.

The index shows every camera as a live tile with its state, fps and faces; a tile links to the
camera's page: a larger live view, its recent events with their snapshots, and its connection
over the last hour (frames per minute against the announced rate, reconnects, stalls).

Browsers open at most six HTTP/1.1 connections to one server, and an MJPEG stream holds one for
as long as it is shown. So tiles are MJPEG streams while there are at most `MJPEG_TILES` cameras;
with more, each tile reloads the camera's latest JPEG in a loop instead (a short request each),
which leaves connections free for the API and for following a link.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

MJPEG_TILES = 4
TILE_WIDTH = 640
TILE_FPS = 5
CAMERA_WIDTH = 1280

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 0; background: #111; color: #ddd; }
header { padding: 10px 16px; background: #1c1c1c; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; } header a { color: #9cf; }
main { padding: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
.tile { background: #1c1c1c; border-radius: 6px; overflow: hidden; text-decoration: none; color: inherit; }
.tile img, .live img { width: 100%; display: block; background: #000; aspect-ratio: 16 / 9;
  object-fit: contain; }
.caption { padding: 6px 10px; display: flex; justify-content: space-between; }
.state { font-weight: 600; } .online { color: #7d7; } .reconnecting, .connecting { color: #fc6; }
.lost, .failed { color: #f66; } .ended, .stopped { color: #aaa; }
.live { max-width: 1280px; } .live img { max-height: 70vh; }
table { border-collapse: collapse; margin-top: 8px; }
td, th { padding: 4px 10px; text-align: left; border-bottom: 1px solid #333; vertical-align: middle; }
td img { height: 56px; display: block; }
.history { display: flex; align-items: flex-end; gap: 2px; height: 60px; margin-top: 8px; }
.history div { width: 8px; background: #4a7; } .history div.bad { background: #d54; }
"""

_COMMON_JS = """
function stateClass(s) { return 'state ' + (s || '').replace(/[^a-z]/g, ''); }
function fps(v) { return v == null ? '-' : v.toFixed(1); }
async function getJSON(url) {
  const r = await fetch(url, {cache: 'no-store'});
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}
"""

_INDEX_JS = """
const cameras = CAMERAS, mjpeg = MJPEG;
function reloadLoop(img, name) {
  const next = () => setTimeout(() => {
    img.src = '/api/cameras/' + encodeURIComponent(name) + '/latest.jpg?width=WIDTH&t=' + Date.now();
  }, 1000 / FPS);
  img.onload = next; img.onerror = () => setTimeout(next, 1000);
  next();
}
for (const name of cameras) {
  const img = document.getElementById('img-' + name);
  if (mjpeg) img.src = '/api/cameras/' + encodeURIComponent(name) + '/stream.mjpg?width=WIDTH&fps=FPS';
  else reloadLoop(img, name);
}
async function refresh() {
  try {
    const data = await getJSON('/api/cameras');
    for (const c of data.cameras) {
      const el = document.getElementById('cap-' + c.name);
      if (!el) continue;
      const s = c.stats || {};
      el.querySelector('.state').className = stateClass(c.state);
      el.querySelector('.state').textContent = c.state;
      el.querySelector('.info').textContent =
        fps(s.display_fps) + ' fps, ' + (s.faces == null ? '-' : s.faces) + ' faces';
    }
    const d = data.detector;
    document.getElementById('detector').textContent = d ? 'detector: ' + d.calls_per_second.toFixed(1) +
      ' calls/s, batch ' + d.mean_batch.toFixed(2) + ', ' + Math.round(d.busy_percent) + ' % busy' : '';
  } catch (e) { document.getElementById('detector').textContent = 'no answer from the server'; }
}
refresh(); setInterval(refresh, 2000);
"""

_CAMERA_JS = """
const name = NAME;
const q = encodeURIComponent(name);
document.getElementById('live').src = '/api/cameras/' + q + '/stream.mjpg?width=WIDTH';
function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
async function refresh() {
  try {
    const c = await getJSON('/api/cameras/' + q);
    const s = c.stats || {};
    const st = document.getElementById('state');
    st.className = stateClass(c.state); st.textContent = c.state;
    document.getElementById('info').textContent = (c.size ? c.size.join('x') : '?') + ', ' +
      fps(s.display_fps) + ' fps shown (source ' + fps(c.fps) + '), ' + (s.faces || 0) + ' faces, ' +
      (s.dropped || 0) + ' dropped, ' + c.reconnects + ' reconnects, ' + c.stalls + ' stalls' +
      (c.error ? ', last error: ' + c.error : '');
    const history = document.getElementById('history');
    history.textContent = '';
    const quality = c.quality;
    if (quality && quality.minutes.length) {
      const expected = (quality.expected_fps || c.fps || 1) * 60;
      for (const [ago, frames, reconnects, stalls] of quality.minutes) {
        const bar = document.createElement('div');
        bar.style.height = Math.max(2, Math.min(60, 60 * frames / expected)) + 'px';
        if (reconnects || stalls) bar.className = 'bad';
        bar.title = ago + ' min ago: ' + frames + ' frames, ' + reconnects + ' reconnects, ' +
          stalls + ' stalls';
        history.appendChild(bar);
      }
    } else history.textContent = 'no connection history (not a live camera, or just started)';
    const events = await getJSON('/api/events?limit=20&camera=' + q);
    const table = document.getElementById('events');
    table.textContent = '';
    for (const e of events.events) {
      const row = table.insertRow();
      cell(row, e.wall_time.replace('T', ' ').slice(0, 19));
      cell(row, e.event + (e.track_id != null ? ' #' + e.track_id : ''));
      cell(row, e.confidence != null ? e.confidence.toFixed(3) :
                e.best_confidence != null ? e.best_confidence.toFixed(3) : (e.reason || ''));
      const td = row.insertCell();
      if (e.snapshot) {
        const img = document.createElement('img'); img.src = e.snapshot; td.appendChild(img);
      }
    }
  } catch (err) { document.getElementById('info').textContent = 'no answer from the server'; }
}
refresh(); setInterval(refresh, 2000);
"""


def _document(title: str, body: str, script: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}<script>{_COMMON_JS}{script}</script></body></html>"
    )


def index(cameras: Sequence[str]) -> str:
    """The page of every camera's live tile."""
    tiles = "".join(
        f"<a class='tile' href='/cameras/{html.escape(name)}'>"
        f"<img id='img-{html.escape(name)}' alt='{html.escape(name)}'>"
        f"<div class='caption' id='cap-{html.escape(name)}'><b>{html.escape(name)}</b>"
        "<span class='state'>connecting</span><span class='info'></span></div></a>"
        for name in cameras
    )
    body = (
        "<header><h1>livefaces</h1><span id='detector'></span></header>"
        f"<main><div class='grid'>{tiles}</div></main>"
    )
    script = (
        _INDEX_JS.replace("CAMERAS", json.dumps(list(cameras)))
        .replace("MJPEG", "true" if len(cameras) <= MJPEG_TILES else "false")
        .replace("WIDTH", str(TILE_WIDTH))
        .replace("FPS", str(TILE_FPS))
    )
    return _document("livefaces", body, script)


def camera(name: str) -> str:
    """One camera's page: the live view, its state, connection history and recent events."""
    shown = html.escape(name)
    body = (
        f"<header><h1>{shown}</h1><a href='/'>all cameras</a><span id='state' class='state'></span></header>"
        f"<main><div class='live'><img id='live' alt='{shown}'></div><p id='info'></p>"
        "<h3>Connection, last hour (frames per minute; red: reconnects or stalls)</h3>"
        "<div class='history' id='history'></div>"
        "<h3>Recent events</h3><table id='events'></table></main>"
    )
    script = _CAMERA_JS.replace("NAME", json.dumps(name)).replace("WIDTH", str(CAMERA_WIDTH))
    return _document(f"livefaces - {name}", body, script)
