// teachseg view: the slides of a predict output folder, their probability maps and outlines (OpenSeadragon).
// Every layer is on the slide's level-0 pixel grid: the probability map's tiles are resampled onto the
// slide's Deep Zoom grid by the server, and the GeoJSON outlines (level-0 pixels, as QuPath writes them) are
// drawn in an SVG moved with the view.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  // the open viewer and its layers, for the browser console and the tests
  const state = { folder: null, info: null, viewer: null, probability: null, outlines: null, select: 0, value: 0 };
  window.teachsegView = state;

  async function getJSON(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).trim()}`);
    return r.json();
  }

  const fixed = (v, digits) => Number(v).toFixed(digits);
  const known = (v) => v !== null && v !== undefined;

  function span(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function areaText(s) {
    const of = s.kind === "image" ? "of the image" : "of the tissue";
    const share = known(s.tumour_fraction) ? ` (${fixed(100 * s.tumour_fraction, 1)}% ${of})` : "";
    if (known(s.tumour_area_mm2)) return `tumour ${fixed(s.tumour_area_mm2, 3)} mm²${share}`;
    if (known(s.tumour_area_px)) return `tumour ${Math.round(s.tumour_area_px)} px² (no µm/px)${share}`;
    return "tumour area unknown";
  }

  function showProblems(problems) {
    $("problem").hidden = problems.length === 0;
    $("problem").textContent = problems.join("\n");
  }

  function buildSidebar(folder) {
    $("folder").textContent = folder.folder;
    for (const s of folder.slides) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.id = String(s.id);
      b.append(span("name", s.name), span("area", areaText(s)));
      if (!s.slide_found) b.append(span("area warn", "slide not found"));
      else if (s.problems.length) b.append(span("area warn", "see the note above the view"));
      b.addEventListener("click", () => { location.hash = encodeURIComponent(s.name); });
      const li = document.createElement("li");
      li.append(b);
      $("slides").append(li);
    }
    $("failures").hidden = folder.failures.length === 0;
    for (const f of folder.failures) {
      const li = document.createElement("li");
      li.textContent = `${f.slide}: ${f.error}${f.fix ? ` (fix: ${f.fix})` : ""}`;
      $("failure-list").append(li);
    }
    const stops = folder.colours.map(([p, c]) => `rgba(${c.join(",")},${p}) ${100 * p}%`);
    $("legend-bar").style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  }

  function fromHash() {
    const name = decodeURIComponent(location.hash.slice(1));
    const slide = state.folder.slides.find((s) => s.name === name) || state.folder.slides[0];
    select(slide.id).catch((e) => showProblems([String(e.message || e)]));
  }

  async function select(id) {
    const seq = ++state.select;
    for (const b of document.querySelectorAll("#slides button")) {
      b.classList.toggle("active", Number(b.dataset.id) === id);
    }
    const info = await getJSON(`/slide/${id}/info.json`);
    if (seq !== state.select) return;  // another slide was chosen meanwhile
    state.info = info;
    $("title").textContent = info.name;
    document.title = `${info.name} - teachseg view`;
    showProblems(info.problems);
    openViewer(info);
  }

  function openViewer(info) {
    if (state.viewer) state.viewer.destroy();
    state.viewer = state.probability = state.outlines = null;
    $("view").replaceChildren();
    const base = `/slide/${info.id}/`;
    const { image, probability, outlines } = info.layers;
    const first = image ? `${base}image.dzi` : probability ? `${base}probability.dzi` : null;
    if (!first) return;
    const viewer = OpenSeadragon({
      element: $("view"),
      prefixUrl: "/static/images/",
      tileSources: first,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      maxZoomPixelRatio: 8,
      visibilityRatio: 0.2,
      gestureSettingsMouse: { clickToZoom: false },
      drawer: "canvas",
    });
    state.viewer = viewer;
    viewer.addOnceHandler("open", () => {
      if (image && probability) {
        // the same Deep Zoom grid as the slide's, so it lies exactly over it at x 0, width 1
        viewer.addTiledImage({
          tileSource: `${base}probability.dzi`,
          x: 0,
          y: 0,
          width: 1,
          success: (e) => { state.probability = e.item; applyLayers(); },
        });
      } else if (probability) {
        state.probability = viewer.world.getItemAt(0);
      }
      applyLayers();
      if (outlines) loadOutlines(viewer, info.id).catch((e) => showProblems([String(e.message || e)]));
      trackCursor(viewer, info);
    });
  }

  function applyLayers() {
    if (state.probability) {
      const on = $("show-probability").checked;
      state.probability.setOpacity(on ? Number($("probability-opacity").value) / 100 : 0);
    }
    if (state.outlines) {
      state.outlines.style.display = $("show-outlines").checked ? "" : "none";
      state.outlines.style.opacity = String(Number($("outlines-opacity").value) / 100);
    }
  }

  function pathData(geometry) {
    const polygons = geometry.type === "Polygon" ? [geometry.coordinates]
      : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    const ring = (r) => `M${r.map((p) => `${Number(p[0])} ${Number(p[1])}`).join("L")}Z`;
    return polygons.map((rings) => rings.map(ring).join("")).join("");
  }

  async function loadOutlines(viewer, id) {
    const collection = await getJSON(`/slide/${id}/outlines.geojson`);
    if (viewer !== state.viewer) return;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "outlines");
    const g = document.createElementNS(SVG, "g");
    svg.append(g);
    for (const f of collection.features || []) {
      const props = f.properties || {};
      const colour = ((props.classification || {}).color || [200, 0, 0]).slice(0, 3).map((c) => Number(c) | 0);
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", pathData(f.geometry || {}));
      path.setAttribute("fill-rule", "evenodd");
      path.setAttribute("stroke", `rgb(${colour.join(",")})`);
      g.append(path);
    }
    viewer.canvas.append(svg);
    state.outlines = svg;
    // level-0 pixels -> pixels of the view: the slide's own transform, followed every frame
    const place = () => {
      const item = viewer.world.getItemAt(0);
      if (!item) return;
      const w = item.source.dimensions.x;
      const o = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
      const e = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(w, 0));
      g.setAttribute("transform", `translate(${o.x} ${o.y}) scale(${(e.x - o.x) / w})`);
    };
    for (const ev of ["update-viewport", "animation", "resize"]) viewer.addHandler(ev, place);
    place();
    applyLayers();
  }

  function trackCursor(viewer, info) {
    const coords = $("coords");
    new OpenSeadragon.MouseTracker({
      element: viewer.container,
      moveHandler: (e) => {
        const item = viewer.world.getItemAt(0);
        if (!item) return;
        const p = item.viewerElementToImageCoordinates(e.position);
        const inside = p.x >= 0 && p.y >= 0 && p.x < info.width && p.y < info.height;
        const um = info.mpp ? `x ${fixed(p.x * info.mpp, 1)}, y ${fixed(p.y * info.mpp, 1)} µm`
          : "µm unknown (no resolution recorded)";
        coords.textContent = `${inside ? "" : "outside: "}x ${Math.floor(p.x)}, y ${Math.floor(p.y)} px (level 0) · ${um}`;
        coords.dataset.x = String(p.x);
        coords.dataset.y = String(p.y);
        if (info.layers.probability && inside) probabilityAt(info.id, p);
        else $("probability-at").textContent = "";
      },
    });
  }

  function probabilityAt(id, p) {
    const seq = ++state.value;
    setTimeout(async () => {
      if (seq !== state.value) return;  // the cursor moved on
      const v = await getJSON(`/slide/${id}/value.json?x=${Math.floor(p.x)}&y=${Math.floor(p.y)}`);
      if (seq !== state.value) return;
      $("probability-at").textContent = known(v.probability) ? `tumour probability ${fixed(v.probability, 2)}` : "";
    }, 120);
  }

  for (const id of ["show-probability", "probability-opacity", "show-outlines", "outlines-opacity"]) {
    $(id).addEventListener("input", applyLayers);
  }
  window.addEventListener("hashchange", fromHash);
  getJSON("/api/folder.json")
    .then((folder) => { state.folder = folder; buildSidebar(folder); fromHash(); })
    .catch((e) => showProblems([String(e.message || e)]));
})();
