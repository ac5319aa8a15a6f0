/**
 * The browser side of `display.brain3d`: plain JavaScript (ES2017, no modules) that runs after NiiVue's UMD bundle in
 * the same inlined script and defines `window.brainnetBrain3d = { mount(el, payload) }`. Kept as text here because it
 * runs in the notebook's page, not in Node; `test/notebook/brain3d.test.ts` parses it, and the browser test runs it.
 *
 * What mount does, in order:
 *  1. without WebGL2, writes one line saying so and stops;
 *  2. builds the controls (overlay, surface, views, hemispheres, threshold), the canvas, the colour key and the readout;
 *  3. decodes the payload's blobs (base64, then `DecompressionStream('deflate')` for deflated ones);
 *  4. makes one NiiVue mesh per hemisphere with per-vertex colours (the overlay's colours, the underlay where a vertex has
 *     no value or is under the threshold), drawn with a headlight shader so colours stay those of the flatmap;
 *  5. answers hover and click with the vertex under the pointer: NiiVue's model-view-projection matrix projects every
 *     vertex, the nearest triangle under the pointer is found on the CPU, and its nearest corner is read out.
 * The element gets `el.brainnet` (the same verbs the controls use, and `pick`/`project` for tests) and
 * `data-state` = 'ready', 'no-webgl2' or 'error'.
 */
export const BRAIN3D_VIEWER_JS = String.raw`
window.brainnetBrain3d = (function () {
  'use strict';
  var TYPES = { u8: Uint8Array, u16: Uint16Array, u32: Uint32Array, i16: Int16Array, i32: Int32Array, f32: Float32Array };
  // a headlight: full colour where the surface faces the viewer, as the flatmap shows it; vN is in view space
  var SHADER = '#version 300 es\nprecision highp int;\nprecision highp float;\nuniform float opacity;\nin vec4 vClr;\nin vec3 vN;\nout vec4 color;\n' +
    'void main() { vec3 n = normalize(vN); float l = 0.62 + 0.38 * abs(n.z); color = vec4(vClr.rgb * l, opacity); }';
  var CSS = '.bn3d{font:13px -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:#222}' +
    '.bn3d-bar{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center;margin:2px 0 6px}' +
    '.bn3d-bar button{font:inherit;padding:1px 6px;border:1px solid #bbb;background:#f7f7f7;border-radius:3px;cursor:pointer}' +
    '.bn3d-bar button.on{background:#dde7f7;border-color:#7a9cd6}.bn3d-bar select,.bn3d-bar input{font:inherit}' +
    '.bn3d-body{display:flex;gap:10px;align-items:flex-start}.bn3d-canvas{flex:1;position:relative;min-width:200px}' +
    '.bn3d-canvas canvas{width:100%;height:100%;display:block;outline:none}.bn3d-side{width:230px;flex:none}' +
    '.bn3d-readout{white-space:pre-wrap;font:12px monospace;background:#f6f6f6;border:1px solid #e2e2e2;border-radius:3px;padding:4px;margin-top:6px;min-height:6em}' +
    '.bn3d-title{font-weight:600;margin:2px 0}.bn3d-msg{color:#8a4b00;font-style:italic}';

  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function bytesOf(b64) { var s = atob(b64), u = new Uint8Array(s.length); for (var i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u; }
  async function inflate(u) {
    if (typeof DecompressionStream === 'undefined') throw new Error('this browser cannot unpack the view (no DecompressionStream)');
    return new Uint8Array(await new Response(new Blob([u]).stream().pipeThrough(new DecompressionStream('deflate'))).arrayBuffer());
  }
  async function decode(b) {
    var u = bytesOf(b.b64);
    if (b.deflate) u = await inflate(u);
    var T = TYPES[b.dtype];
    if (!T) throw new Error('unknown array type ' + b.dtype);
    var a = new T(u.buffer, u.byteOffset, u.byteLength / T.BYTES_PER_ELEMENT);
    if (a.length !== b.length) throw new Error('a payload array holds ' + a.length + ' values, its header says ' + b.length);
    return a;
  }
  function hasWebGL2() { try { return !!document.createElement('canvas').getContext('webgl2'); } catch (e) { return false; } }
  function fmt(v) {
    if (!isFinite(v)) return 'NaN';
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
  }
  function addStyle() {
    if (document.getElementById('bn3d-style')) return;
    var s = el('style'); s.id = 'bn3d-style'; s.textContent = CSS; (document.head || document.documentElement).appendChild(s);
  }
  function say(root, state, text) { root.innerHTML = ''; root.appendChild(el('div', 'bn3d-msg', text)); root.setAttribute('data-state', state); }

  // The colour key of an overlay, drawn into a 2-D canvas (its height set first: resizing clears it).
  function drawKey(cv, key, blobs) {
    if (!key) { cv.style.display = 'none'; return; }
    cv.style.display = 'block';
    var H = key.kind === 'bar' ? 56 : key.kind === 'square' ? 180 : Math.max(20, (key.entries.length + (key.title ? 1 : 0)) * 16 + 4);
    if (cv.height !== H) cv.height = H;
    var ctx = cv.getContext('2d'), W = cv.width, i;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = '#222'; ctx.font = '12px sans-serif'; ctx.textBaseline = 'top'; ctx.textAlign = 'left';
    if (key.kind === 'bar') {
      var n = key.colors.length, x0 = 8, w = W - 16;
      for (i = 0; i < w; i++) { ctx.fillStyle = key.colors[Math.min(n - 1, Math.floor((i + 0.5) / w * n))]; ctx.fillRect(x0 + i, 4, 1, 14); }
      ctx.strokeStyle = '#555'; ctx.strokeRect(x0 + 0.5, 4.5, w - 1, 13);
      ctx.fillStyle = '#222';
      ctx.fillText(key.tickLabels ? key.tickLabels[0] : fmt(key.vmin), x0, 22);
      ctx.textAlign = 'right'; ctx.fillText(key.tickLabels ? key.tickLabels[1] : fmt(key.vmax), x0 + w, 22);
      if (key.label) { ctx.textAlign = 'center'; ctx.fillText(key.label, x0 + w / 2, 38); }
    } else if (key.kind === 'square') {
      var S = key.size, rgb = blobs[key.rgb], side = 120, ox = 70, oy = 18;
      var img = ctx.createImageData(S, S);
      for (i = 0; i < S * S; i++) { img.data[4 * i] = rgb[3 * i]; img.data[4 * i + 1] = rgb[3 * i + 1]; img.data[4 * i + 2] = rgb[3 * i + 2]; img.data[4 * i + 3] = 255; }
      var tmp = document.createElement('canvas'); tmp.width = S; tmp.height = S; tmp.getContext('2d').putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false; ctx.drawImage(tmp, ox, oy, side, side);
      ctx.strokeStyle = '#555'; ctx.strokeRect(ox + 0.5, oy + 0.5, side - 1, side - 1);
      ctx.fillStyle = '#222'; ctx.textAlign = 'center';
      if (key.title) ctx.fillText(key.title, ox + side / 2, 2);
      if (key.xticks) { ctx.textAlign = 'left'; ctx.fillText(key.xticks[0], ox, oy + side + 2); ctx.textAlign = 'right'; ctx.fillText(key.xticks[1], ox + side, oy + side + 2); }
      if (key.xlabel) { ctx.textAlign = 'center'; ctx.fillText(key.xlabel, ox + side / 2, oy + side + 16); }
      ctx.textAlign = 'right';
      if (key.yticks) { ctx.fillText(key.yticks[1], ox - 4, oy); ctx.fillText(key.yticks[0], ox - 4, oy + side - 12); }
      if (key.ylabel) ctx.fillText(key.ylabel, ox - 4, oy + side / 2 - 6);
    } else {
      var y = 2;
      if (key.title) { ctx.fillText(key.title, 4, y); y += 16; }
      key.entries.forEach(function (e) { ctx.fillStyle = e.color; ctx.fillRect(4, y + 2, 11, 11); ctx.fillStyle = '#222'; ctx.fillText(e.label, 20, y); y += 16; });
    }
  }

  async function mount(root, p) {
    addStyle();
    root.classList.add('bn3d');
    root.setAttribute('data-state', 'loading');
    // 1. WebGL2 or one line
    if (!hasWebGL2()) { say(root, 'no-webgl2', '3-D view unavailable: this browser gives no WebGL2 context (turn on hardware acceleration, or use the flatmap).'); return; }
    if (!window.niivue || !window.niivue.Niivue) { say(root, 'error', '3-D view unavailable: NiiVue did not load in this page.'); return; }
    try {
      await build(root, p);
    } catch (e) {
      console.error(e);
      say(root, 'error', '3-D view failed: ' + (e && e.message ? e.message : String(e)));
    }
  }

  async function build(root, p) {
    var NV = window.niivue;
    var N = p.nLh + p.nRh, height = p.height || 480;
    // 2. controls, canvas, key, readout
    root.innerHTML = '';
    if (p.title) root.appendChild(el('div', 'bn3d-title', p.title));
    var bar = el('div', 'bn3d-bar'), body = el('div', 'bn3d-body');
    var box = el('div', 'bn3d-canvas'); box.style.height = height + 'px';
    var canvas = document.createElement('canvas'); box.appendChild(canvas);
    var side = el('div', 'bn3d-side'), keyCv = document.createElement('canvas'); keyCv.width = 230; keyCv.height = 56;
    var readout = el('div', 'bn3d-readout', 'hover or click a vertex');
    side.appendChild(keyCv); side.appendChild(readout);
    body.appendChild(box); body.appendChild(side);
    root.appendChild(bar); root.appendChild(body);

    var overlaySel = el('select'); overlaySel.title = 'overlay';
    p.overlays.forEach(function (o, i) { var opt = el('option', '', o.name); opt.value = String(i); overlaySel.appendChild(opt); });
    var ovLabel = el('label', '', 'overlay '); ovLabel.appendChild(overlaySel); bar.appendChild(ovLabel);
    var surfSel = null;
    if (p.surfaces.length > 1) {
      surfSel = el('select'); surfSel.title = 'surface';
      p.surfaces.forEach(function (s) { var opt = el('option', '', s); opt.value = s; surfSel.appendChild(opt); });
      var sl = el('label', '', 'surface '); sl.appendChild(surfSel); bar.appendChild(sl);
    }
    var viewBtns = {};
    var views = el('span');
    Object.keys(p.views).forEach(function (v) { var b = el('button', '', v); b.type = 'button'; b.setAttribute('data-view', v); viewBtns[v] = b; views.appendChild(b); });
    bar.appendChild(views);
    var thrLabel = el('label'), thrName = el('span'), thr = el('input'), thrVal = el('span');
    thr.type = 'range'; thr.min = '0'; thr.max = '1000'; thr.step = '1';
    thrLabel.appendChild(thrName); thrLabel.appendChild(thr); thrLabel.appendChild(thrVal); bar.appendChild(thrLabel);

    // 3. the payload's arrays
    var blobs = await Promise.all(p.blobs.map(decode));
    var roiNames = p.rois ? p.rois.names : null, roiIdx = p.rois ? blobs[p.rois.index] : null;
    var hemis = p.hemis.map(function (h) {
      var nv = h.nVertices, f = blobs[h.faces];
      return { name: h.name, nVertices: nv, faces: f instanceof Uint32Array ? f : Uint32Array.from(f), dataIndex: blobs[h.dataIndex], positions: h.positions, mesh: null, pts: null, visible: true };
    });
    function positions(h, s) {
      var q = h.positions[s], a = blobs[q.data], out = new Float32Array(a.length);
      for (var i = 0; i < a.length; i += 3) for (var k = 0; k < 3; k++) out[i + k] = q.origin[k] + q.step[k] * (a[i + k] + 32767);
      return out;
    }

    // 4. NiiVue and the meshes
    var nv = new NV.Niivue({ backColor: [1, 1, 1, 1], show3Dcrosshair: false, crosshairWidth: 0, isOrientCube: false, dragAndDropEnabled: false,
      loadingText: '', isColorbar: false, isOrientationTextVisible: false, logLevel: 'error' });
    await nv.attachToCanvas(canvas);
    nv.setSliceType(nv.sliceTypeRender);
    var shader = nv.setCustomMeshShader ? nv.setCustomMeshShader(SHADER, 'brainnet headlight') : undefined;
    var state = { overlay: p.initial.overlay, surface: p.initial.surface, view: p.initial.view, threshold: {}, pinned: null };

    function vertexColors(h) {
      var o = p.overlays[state.overlay], c = blobs[o.colors], u = p.underlay, rgba = new Uint8Array(h.nVertices * 4);
      var t = o.threshold, tv = t ? blobs[t.values] : null, tcut = t ? (state.threshold[state.overlay] !== undefined ? state.threshold[state.overlay] : t.value) : -Infinity;
      for (var i = 0; i < h.nVertices; i++) {
        var d = h.dataIndex[i], q = 4 * i;
        var show = d >= 0 && c[4 * d + 3] > 0;
        if (show && tv) { var v = t.mode === 'abs' ? Math.abs(tv[d]) : tv[d]; show = v >= tcut; }
        if (show) { rgba[q] = c[4 * d]; rgba[q + 1] = c[4 * d + 1]; rgba[q + 2] = c[4 * d + 2]; } else { rgba[q] = u[0]; rgba[q + 1] = u[1]; rgba[q + 2] = u[2]; }
        rgba[q + 3] = 255;
      }
      return rgba;
    }
    function buildMeshes() {
      hemis.forEach(function (h) {
        if (h.mesh) nv.removeMesh(h.mesh);
        h.pts = positions(h, state.surface);
        h.mesh = new NV.NVMesh(h.pts, h.faces, h.name, vertexColors(h), 1, h.visible, nv.gl);
        nv.addMesh(h.mesh);
        if (shader !== undefined) nv.setMeshShader(h.mesh.id, shader);
      });
    }
    function recolor() {
      hemis.forEach(function (h) { nv.setMeshProperty(h.mesh.id, 'rgba255', vertexColors(h)); });
      root.setAttribute('data-overlay', p.overlays[state.overlay].name);
    }
    function setOverlay(i) {
      i = Number(i);
      if (!(i >= 0 && i < p.overlays.length)) throw new Error('no overlay ' + i + '; there are ' + p.overlays.length);
      state.overlay = i; overlaySel.value = String(i);
      var o = p.overlays[i], t = o.threshold;
      thrLabel.style.display = t ? '' : 'none';
      if (t) {
        var v = state.threshold[i] !== undefined ? state.threshold[i] : t.value;
        thrName.textContent = 'threshold (' + t.name + (t.mode === 'abs' ? ', |value|' : '') + ') ';
        thr.value = String(Math.round(1000 * (v - t.min) / ((t.max - t.min) || 1)));
        thrVal.textContent = ' ' + fmt(v);
      }
      drawKey(keyCv, o.key, blobs);
      recolor();
      showReadout(state.pinned);
    }
    function setThreshold(v) {
      var t = p.overlays[state.overlay].threshold;
      if (!t) return;
      state.threshold[state.overlay] = Number(v);
      thrVal.textContent = ' ' + fmt(Number(v));
      recolor();
    }
    function setView(name) {
      var v = p.views[name];
      if (!v) throw new Error('no view ' + name + '; views: ' + Object.keys(p.views).join(', '));
      state.view = name;
      hemis.forEach(function (h) { h.visible = v.hemis.indexOf(h.name) >= 0; nv.setMeshProperty(h.mesh.id, 'visible', h.visible); });
      nv.setRenderAzimuthElevation(v.azimuth, v.elevation);
      Object.keys(viewBtns).forEach(function (k) { viewBtns[k].className = k === name ? 'on' : ''; });
      root.setAttribute('data-view', name);
    }
    function setSurface(s) {
      if (!p.surfaces.includes(s)) throw new Error('no surface ' + s + '; surfaces: ' + p.surfaces.join(', '));
      state.surface = s; if (surfSel) surfSel.value = s;
      buildMeshes(); setView(state.view);
    }

    // 5. picking: the nearest triangle under a CSS pixel of the canvas, then its nearest corner
    function renderTile() {
      var t = (nv.screenSlices || []).filter(function (s) { return s.axCorSag === nv.sliceTypeRender; })[0];
      return t && t.leftTopWidthHeight[2] > 0 ? t.leftTopWidthHeight : [0, 0, canvas.width, canvas.height];
    }
    function mvp() { return nv.calculateMvpMatrix(null, renderTile(), nv.scene.renderAzimuth, nv.scene.renderElevation)[0]; }
    function projector() {
      var m = mvp(), lt = renderTile(), dpr = canvas.width / (canvas.clientWidth || canvas.width);
      return function (x, y, z, out) {
        var cx = m[0] * x + m[4] * y + m[8] * z + m[12], cy = m[1] * x + m[5] * y + m[9] * z + m[13], cz = m[2] * x + m[6] * y + m[10] * z + m[14], w = m[3] * x + m[7] * y + m[11] * z + m[15];
        out[0] = (lt[0] + (cx / w + 1) / 2 * lt[2]) / dpr; out[1] = (lt[1] + (1 - cy / w) / 2 * lt[3]) / dpr; out[2] = cz / w;
      };
    }
    function pick(px, py) {
      var proj = projector(), best = null, tmp = [0, 0, 0];
      hemis.forEach(function (h) {
        if (!h.visible) return;
        var n = h.nVertices, sx = new Float32Array(n), sy = new Float32Array(n), sz = new Float32Array(n), P = h.pts, F = h.faces;
        for (var i = 0; i < n; i++) { proj(P[3 * i], P[3 * i + 1], P[3 * i + 2], tmp); sx[i] = tmp[0]; sy[i] = tmp[1]; sz[i] = tmp[2]; }
        for (var f = 0; f < F.length; f += 3) {
          var a = F[f], b = F[f + 1], c = F[f + 2];
          var d = (sy[b] - sy[c]) * (sx[a] - sx[c]) + (sx[c] - sx[b]) * (sy[a] - sy[c]);
          if (Math.abs(d) < 1e-9) continue;
          var wa = ((sy[b] - sy[c]) * (px - sx[c]) + (sx[c] - sx[b]) * (py - sy[c])) / d;
          var wb = ((sy[c] - sy[a]) * (px - sx[c]) + (sx[a] - sx[c]) * (py - sy[c])) / d;
          var wc = 1 - wa - wb;
          if (wa < 0 || wb < 0 || wc < 0) continue;
          var z = wa * sz[a] + wb * sz[b] + wc * sz[c];
          // NiiVue draws with gl.LEQUAL: the smallest depth is the one on screen
          if (best && z >= best.z) continue;
          var v = wa >= wb && wa >= wc ? a : wb >= wc ? b : c;
          best = { z: z, hemi: h.name, meshVertex: v, vertex: h.dataIndex[v] };
        }
      });
      return best;
    }
    function project(dataVertex) {
      var proj = projector(), out = [0, 0, 0];
      for (var k = 0; k < hemis.length; k++) {
        var h = hemis[k];
        for (var i = 0; i < h.nVertices; i++) if (h.dataIndex[i] === dataVertex) { proj(h.pts[3 * i], h.pts[3 * i + 1], h.pts[3 * i + 2], out); return { x: out[0], y: out[1], z: out[2], hemi: h.name, meshVertex: i }; }
      }
      return null;
    }
    function describe(hit) {
      if (!hit) return 'hover or click a vertex';
      if (hit.vertex < 0) return hit.hemi + ' mesh vertex ' + hit.meshVertex + '\n(no data here)';
      var d = hit.vertex, hemi = d < p.nLh ? 'lh' : 'rh', local = d < p.nLh ? d : d - p.nLh;
      var lines = ['vertex ' + d + ' (' + hemi + ' ' + local + ')', 'ROI: ' + (roiIdx && roiIdx[d] > 0 ? roiNames[roiIdx[d] - 1] : '—')];
      var seen = {};
      var order = [state.overlay].concat(p.overlays.map(function (_, i) { return i; }).filter(function (i) { return i !== state.overlay; }));
      order.forEach(function (i) {
        p.overlays[i].readout.forEach(function (r) {
          if (seen[r.name]) return; seen[r.name] = 1;
          var a = blobs[r.values], vals = [];
          for (var k = 0; k < r.k; k++) vals.push(fmt(a[d * r.k + k]));
          lines.push(r.name + ': ' + (r.k === 1 ? vals[0] : '(' + vals.join(', ') + ')'));
        });
      });
      return lines.join('\n');
    }
    function showReadout(hit) { readout.textContent = describe(hit); }
    function cssPos(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    var pending = null, down = null;
    canvas.addEventListener('mousemove', function (e) {
      if (e.buttons) return;
      var xy = cssPos(e);
      if (pending) { pending = xy; return; }
      pending = xy;
      requestAnimationFrame(function () { var q = pending; pending = null; var hit = pick(q[0], q[1]); showReadout(hit || state.pinned); });
    });
    canvas.addEventListener('mouseleave', function () { showReadout(state.pinned); });
    canvas.addEventListener('mousedown', function (e) { down = cssPos(e); });
    canvas.addEventListener('mouseup', function (e) {
      var xy = cssPos(e);
      if (down && Math.hypot(xy[0] - down[0], xy[1] - down[1]) < 4) { state.pinned = pick(xy[0], xy[1]); showReadout(state.pinned); }
      down = null;
    });
    overlaySel.addEventListener('change', function () { setOverlay(overlaySel.value); });
    if (surfSel) surfSel.addEventListener('change', function () { setSurface(surfSel.value); });
    Object.keys(viewBtns).forEach(function (k) { viewBtns[k].addEventListener('click', function () { setView(k); }); });
    thr.addEventListener('input', function () {
      var t = p.overlays[state.overlay].threshold;
      if (t) setThreshold(t.min + (t.max - t.min) * Number(thr.value) / 1000);
    });

    buildMeshes();
    setOverlay(state.overlay);
    setView(state.view);
    nv.setScale(1.25); // two hemispheres side by side fill the canvas's width
    root.brainnet = { nv: nv, pick: pick, project: project, describe: describe, setView: setView, setOverlay: setOverlay, setThreshold: setThreshold, setSurface: setSurface, state: state,
      readout: function () { return readout.textContent; } };
    root.setAttribute('data-state', 'ready');
  }

  return { mount: mount, version: 1 };
})();
`;
