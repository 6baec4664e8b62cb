// The one-map: every layer the hub serves on one live map. Plain JavaScript, no build step.
// Map text comes only from this page (legend, panel): MapLibre draws no labels, so no glyphs
// or tiles are fetched from anywhere.
(() => {
  "use strict";

  const TEXT = {
    zh: {
      title: "消防一张图", layers: "图层", live: "实时", connecting: "连接中", down: "连接中断",
      updated: "更新于", stale: "数据超时", level: "级别", score: "风险分", factor: "因素",
      weight: "权重", contribution: "贡献", sources: "来源", cell: "网格", noData: "无数据",
      building: "建筑", alarm: "报警", weather: "气象", water: "水源", response: "响应",
      medical: "医疗", public_safety: "治安", agency: "单位", time: "时间", outlines: "行政区划",
      partialCells: "网格过多，请放大：显示 {shown} / {all}", partial: "{layer}过多，请放大：显示 {shown} / {all}",
      partialMore: "{layer}过多，请放大：仅显示 {shown} 个",
    },
    en: {
      title: "firehub one-map", layers: "Layers", live: "live", connecting: "connecting",
      down: "disconnected", updated: "updated", stale: "stale feeds", level: "level",
      score: "score", factor: "factor", weight: "weight", contribution: "contribution",
      sources: "sources", cell: "cell", noData: "no data", building: "building", alarm: "alarm",
      weather: "weather", water: "water", response: "response", medical: "medical",
      public_safety: "public safety", agency: "agency", time: "time", outlines: "districts",
      partialCells: "zoom in: {shown} of {all} cells shown", partial: "zoom in: {shown} of {all} shown ({layer})",
      partialMore: "zoom in: only {shown} shown, more in view ({layer})",
    },
  };
  // Layers drawn as cells (fill by a colour property) and which property colours them.
  const CELL_COLOUR = { risk: "colour", response: "response_colour", water_coverage: "water_colour" };
  // The cell layers carry only what the map draws (the panel asks for a cell's explanation);
  // the stream's deltas carry every property.
  const CELL_PROPERTIES = { risk: "cell,level,colour", response: "cell,response_band,response_colour",
                            water_coverage: "cell,water,water_colour" };
  // Layers are read for the area around the view (a province holds far more cells, buildings
  // and hydrants than a browser should draw), at most CELL_LIMIT cells or POINT_LIMIT points;
  // the warning areas whole (few, and large).
  const CELL_LIMIT = 20000, POINT_LIMIT = 20000;
  const byArea = (name) => name !== "warnings";
  const areaParam = () => (cellArea ? `&bbox=${cellArea.map((v) => v.toFixed(5)).join(",")}` : "");
  const layerUrl = (name) => CELL_PROPERTIES[name]
    ? `/api/v1/layers/${name}?limit=${CELL_LIMIT}&properties=${CELL_PROPERTIES[name]}${areaParam()}`
    : `/api/v1/layers/${name}?limit=${POINT_LIMIT}${byArea(name) ? areaParam() : ""}`;
  const VISIBLE_AT_START = new Set(["risk", "alarms", "stations", "warnings"]);
  const loaded = new Set();  // layers fetched so far (hidden ones are fetched when first shown)

  let cellArea = null;  // [west, south, east, north] the layers were read for
  // layer -> {shown, all} when its area held more than was read (all null: the hub said "more"
  // without a count)
  const partial = new Map();
  let lang = localStorage.getItem("onemap.lang") || "zh";
  let layerInfo = [];
  let hasOutlines = false;
  const riskCells = new Map();  // token -> feature, updated by the stream
  const t = (key) => TEXT[lang][key] || key;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

  const map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {}, layers: [{ id: "background", type: "background", paint: { "background-color": "#eef2f5" } }] },
    center: [123.43, 41.8],
    zoom: 10.5,
    attributionControl: false,
  });
  window.onemap = { map, riskCells, cellArea: () => cellArea };  // for operators' consoles and the browser test

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  // A layer's collection; notes when its area held more features than were sent.
  async function getLayer(name) {
    const data = await getJson(layerUrl(name));
    if (data.more || data.numberMatched > data.numberReturned) {
      partial.set(name, { shown: data.numberReturned, all: data.more ? null : data.numberMatched });
    } else {
      partial.delete(name);
    }
    return data;
  }

  // The view with half its size again on every side, so a short pan needs no new read.
  function viewArea() {
    const b = map.getBounds();
    const dx = (b.getEast() - b.getWest()) / 2, dy = (b.getNorth() - b.getSouth()) / 2;
    return [Math.max(-180, b.getWest() - dx), Math.max(-90, b.getSouth() - dy),
            Math.min(180, b.getEast() + dx), Math.min(90, b.getNorth() + dy)];
  }

  // After a move: the layers are read again when the view left their area, or when the area was
  // cut short and the view is now much smaller (zoomed in, so more detail fits). Hidden layers
  // are read when next shown.
  let cellGeneration = 0;
  async function followView() {
    if (!cellArea) return;
    const b = map.getBounds();
    const view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const inside = view[0] >= cellArea[0] && view[1] >= cellArea[1] && view[2] <= cellArea[2] && view[3] <= cellArea[3];
    const size = (a) => (a[2] - a[0]) * (a[3] - a[1]);
    if (inside && !(partial.size > 0 && size(view) * 16 <= size(cellArea))) return;
    cellArea = viewArea();
    const generation = ++cellGeneration;
    const shown = (n) => map.getLayer(`${n}-main`) && map.getLayoutProperty(`${n}-main`, "visibility") !== "none";
    const names = [...loaded].filter((n) => byArea(n) && (n === "risk" || shown(n)));
    [...loaded].filter((n) => byArea(n) && !names.includes(n)).forEach((n) => { loaded.delete(n); partial.delete(n); });
    const fetched = await Promise.all(names.map((n) => (n === "risk" ? readRisk() : getLayer(n)).catch(() => null)));
    if (generation !== cellGeneration) {  // a later move's read wins
      names.forEach((n, i) => { if (n === "risk" && fetched[i]) readsOpen.delete(fetched[i]); });
      return;
    }
    names.forEach((n, i) => {
      if (!fetched[i]) return;
      if (n === "risk") replaceRisk(fetched[i]);
      else map.getSource(n)?.setData(fetched[i]);
    });
    renderStatus();
  }

  function label(info) { return lang === "zh" ? info.title_zh : info.title; }
  function legendLabel(entry) { return lang === "zh" ? entry.label_zh : entry.label; }

  function renderText() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("lang").textContent = lang === "zh" ? "EN" : "中文";
    document.title = lang === "zh" ? "消防一张图 · firehub" : "firehub one-map";
    renderSidebar();
    renderStatus();
  }

  function renderSidebar() {
    const box = $("layers");
    box.innerHTML = "";
    const outlinesEntry = { name: "outlines", title: TEXT.en.outlines, title_zh: TEXT.zh.outlines, geometry: "lines", legend: [] };
    const entries = hasOutlines ? [outlinesEntry, ...layerInfo] : layerInfo;
    for (const info of entries) {
      const div = document.createElement("div");
      div.className = "layer";
      const id = `toggle-${info.name}`;
      const visible = map.getLayer(`${info.name}-main`) && map.getLayoutProperty(`${info.name}-main`, "visibility") !== "none";
      div.innerHTML = `<label for="${id}"><input type="checkbox" id="${id}" data-layer="${esc(info.name)}" ${visible ? "checked" : ""}>${esc(label(info))}</label>`;
      const legend = document.createElement("div");
      legend.className = "legend";
      for (const e of info.legend || []) {
        const shape = info.geometry === "points" ? "swatch point" : "swatch";
        legend.insertAdjacentHTML("beforeend", `<div><span class="${shape}" style="background:${esc(e.colour)}"></span>${esc(legendLabel(e))}</div>`);
      }
      div.appendChild(legend);
      box.appendChild(div);
    }
    box.querySelectorAll("input[data-layer]").forEach((input) => {
      input.addEventListener("change", () => setVisible(input.dataset.layer, input.checked));
    });
  }

  function setVisible(name, on) {
    if (on && layerInfo.some((info) => info.name === name) && !loaded.has(name)) {
      loaded.add(name);
      getLayer(name).then((data) => { map.getSource(name)?.setData(data); renderStatus(); })
        .catch(() => loaded.delete(name));  // the next toggle tries again
    }
    for (const suffix of ["main", "line"]) {
      const id = `${name}-${suffix}`;
      if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
    }
    renderStatus();
  }

  function colourByState(info, property) {
    const expr = ["match", ["get", property]];
    for (const e of info.legend) expr.push(e.key, e.colour);
    expr.push("#777777");
    return expr;
  }

  async function addLayers() {
    const outlines = await getJson("/api/v1/outlines").catch(() => ({ type: "FeatureCollection", features: [] }));
    hasOutlines = (outlines.features || []).length > 0;  // a hub without map.outlines draws none
    map.addSource("outlines", { type: "geojson", data: outlines });
    map.addLayer({ id: "outlines-main", type: "line", source: "outlines", paint: { "line-color": "#6b7b8c", "line-width": 1.5, "line-dasharray": [3, 2] } });
    fitTo(outlines);
    cellArea = viewArea();

    layerInfo = (await getJson("/api/v1/layers")).layers;
    // The layers shown at start are fetched together; a hidden one when it is first shown.
    const empty = { type: "FeatureCollection", features: [] };
    const shown = layerInfo.filter((info) => VISIBLE_AT_START.has(info.name));
    const fetched = new Map(await Promise.all(shown.map(async (info) => [info.name, await getLayer(info.name)])));
    shown.forEach((info) => loaded.add(info.name));
    for (const info of layerInfo) {
      const visibility = VISIBLE_AT_START.has(info.name) ? "visible" : "none";
      const data = fetched.get(info.name) || empty;
      map.addSource(info.name, { type: "geojson", data, promoteId: info.geometry === "cells" ? "cell" : undefined });
      if (info.name === "risk") data.features.forEach((f) => riskCells.set(f.id, f));
      if (info.geometry === "cells") {
        map.addLayer({ id: `${info.name}-main`, type: "fill", source: info.name, layout: { visibility },
                       paint: { "fill-color": ["get", CELL_COLOUR[info.name]], "fill-opacity": 0.55, "fill-outline-color": "rgba(0,0,0,0.15)" } });
      } else if (info.geometry === "areas") {
        map.addLayer({ id: `${info.name}-main`, type: "fill", source: info.name, layout: { visibility },
                       paint: { "fill-color": ["match", ["get", "kind"], "drafted", "#e31a1c", "#8856a7"], "fill-opacity": 0.12 } });
        map.addLayer({ id: `${info.name}-line`, type: "line", source: info.name, layout: { visibility },
                       paint: { "line-color": ["match", ["get", "kind"], "drafted", "#e31a1c", "#8856a7"], "line-width": 2 } });
      } else {
        const property = info.name === "weather_stations" ? "danger_class" : "state";
        map.addLayer({ id: `${info.name}-main`, type: "circle", source: info.name, layout: { visibility },
                       paint: { "circle-color": colourByState(info, property), "circle-radius": info.name === "alarms" ? 7 : 5,
                                "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 } });
      }
    }
    map.moveLayer("outlines-main");
    ["hydrants", "stations", "hospitals", "key_units", "incidents", "weather_stations", "alarms"].forEach((n) => map.getLayer(`${n}-main`) && map.moveLayer(`${n}-main`));
    renderText();
  }

  function fitTo(fc) {
    const b = new maplibregl.LngLatBounds();
    for (const f of fc.features || []) {
      const walk = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(walk));
      walk(f.geometry.coordinates);
    }
    if (!b.isEmpty()) map.fitBounds(b, { padding: 20, animate: false });
  }

  // --- Live updates ---
  let lastUpdate = null;
  let streamState = "connecting";
  let staleFeeds = [];

  function renderStatus() {
    $("status").dataset.state = streamState;
    $("status").textContent = t(streamState);
    $("updated").textContent = lastUpdate ? `${t("updated")} ${lastUpdate.toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB")}` : "";
    $("stale").hidden = staleFeeds.length === 0;
    $("stale").textContent = `${t("stale")}: ${staleFeeds.join(", ")}`;
    $("stale").title = staleFeeds.join("\n");
    const cut = [...partial.entries()].filter(([n]) => map.getLayer(`${n}-main`) && map.getLayoutProperty(`${n}-main`, "visibility") !== "none");
    $("partial").hidden = cut.length === 0;
    if (cut.length) {
      const [name, { shown, all }] = cut[0];
      const info = layerInfo.find((i) => i.name === name);
      const text = all === null ? "partialMore" : CELL_PROPERTIES[name] ? "partialCells" : "partial";
      $("partial").textContent = t(text).replace("{shown}", shown)
        .replace("{all}", all).replace("{layer}", info ? label(info) : name);
    }
  }

  let panelCell = null;  // the cell whose explanation is open, refreshed when it changes

  // Each read of the risk layer keeps the deltas that arrive from its start until its answer is
  // drawn (or dropped), and they are applied on top of that answer, which may predate them: an
  // alarm's red cell must not be lost to a pan.
  const readsOpen = new Set();
  async function readRisk() {
    const read = { data: null, late: [] };
    readsOpen.add(read);
    try {
      read.data = await getLayer("risk");
      return read;
    } catch (e) {
      readsOpen.delete(read);
      throw e;
    }
  }
  function replaceRisk(read) {
    readsOpen.delete(read);
    riskCells.clear();
    read.data.features.forEach((f) => riskCells.set(f.id, f));
    for (const delta of read.late) {
      for (const f of delta.features) riskCells.set(f.id, f);
      for (const token of delta.removed) riskCells.delete(token);
    }
    map.getSource("risk")?.setData({ type: "FeatureCollection", features: [...riskCells.values()] });
  }

  function applyDelta(delta) {
    for (const read of readsOpen) read.late.push(delta);
    for (const f of delta.features) riskCells.set(f.id, f);
    if (panelCell && !$("panel").hidden && delta.features.some((f) => f.id === panelCell)) {
      showCell(panelCell).catch(() => {});
    }
    for (const token of delta.removed) riskCells.delete(token);
    const source = map.getSource("risk");
    if (source) source.setData({ type: "FeatureCollection", features: [...riskCells.values()] });
    lastUpdate = new Date();
    refreshSoon(["alarms", "response", "water_coverage"].concat(delta.warnings.length ? ["warnings"] : []));
    renderStatus();
  }

  const pending = new Set();
  let refreshTimer = null;
  function refreshSoon(names) {
    names.forEach((n) => pending.add(n));
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      const names = [...pending];
      pending.clear();
      for (const n of names) {
        if (!loaded.has(n)) continue;  // fetched when first shown
        const source = map.getSource(n);
        if (source) source.setData(await getLayer(n).catch(() => ({ type: "FeatureCollection", features: [] })));
      }
    }, 300);
  }

  async function reloadRisk() {
    replaceRisk(await readRisk());
    lastUpdate = new Date();
    renderStatus();
  }

  function connectStream() {
    // EventSource reconnects by itself (the hub asks for 2 s) and sends Last-Event-ID; after a
    // restart of the hub the stream answers with `reset` and the layer is reloaded.
    const es = new EventSource("/api/v1/layers/risk/stream");
    es.onopen = () => { streamState = "live"; renderStatus(); };
    es.onerror = () => { streamState = es.readyState === EventSource.CLOSED ? "down" : "connecting"; renderStatus(); };
    es.addEventListener("delta", (e) => applyDelta(JSON.parse(e.data)));
    es.addEventListener("reset", () => reloadRisk().catch(() => {}));
  }

  async function checkFeeds() {
    try {
      const feeds = (await getJson("/api/v1/feeds")).feeds || [];
      const now = Date.now();
      staleFeeds = feeds.filter((f) => f.state === "active" && f.cadence_s > 0 && f.last_record_at &&
                                       now - Date.parse(f.last_record_at) > 2 * f.cadence_s * 1000).map((f) => f.id);
    } catch (e) { /* the stream status already shows an unreachable hub */ }
    renderStatus();
  }

  // --- Details panel ---
  async function showCell(token) {
    panelCell = token;
    const cell = await getJson(`/api/v1/layers/risk/cells/${encodeURIComponent(token)}`);
    const rows = [];
    const records = {};
    const ids = [...new Set(cell.factors.flatMap((f) => f.sources))].slice(0, 24);
    await Promise.all(ids.map(async (id) => {
      try { records[id] = await getJson(`/api/v1/records/${encodeURIComponent(id)}`); } catch (e) { /* gone */ }
    }));
    for (const f of cell.factors) {
      const sources = f.sources.map((id) => {
        const r = records[id];
        return r ? `${esc(r.agency)} · ${esc(r.observed_at)} · ${esc(id)}` : esc(id);
      }).join("<br>");
      rows.push(`<tr data-factor="${esc(f.name)}"><td>${esc(t(f.name))}<div class="note">${esc(f.note)}</div>${sources ? `<div class="sources">${sources}</div>` : ""}</td>` +
                `<td class="num">${f.score.toFixed(2)}</td><td class="num">${f.weight.toFixed(2)}</td><td class="num">${f.contribution.toFixed(1)}</td></tr>`);
    }
    openPanel(`<h3>${t("cell")} ${esc(cell.cell)}</h3>
      <p><span class="level-badge" style="background:${esc(cell.colour)}">${esc(levelName(cell.level))}</span>
         ${t("score")} <b>${cell.score.toFixed(1)}</b>${cell.forced ? " (" + t("alarm") + ")" : ""}</p>
      <table><thead><tr><th>${t("factor")}</th><th class="num">${t("score")}</th><th class="num">${t("weight")}</th><th class="num">${t("contribution")}</th></tr></thead>
      <tbody>${rows.join("")}</tbody></table>`);
  }

  function levelName(level) {
    const risk = layerInfo.find((l) => l.name === "risk");
    const entry = risk && risk.legend.find((e) => e.key === level);
    return entry ? legendLabel(entry) : level;
  }

  function showPoint(feature) {
    panelCell = null;
    const p = feature.properties;
    const info = layerInfo.find((l) => feature.layer.id === `${l.name}-main`);
    const record = typeof p.record === "string" ? JSON.parse(p.record) : p.record;
    const body = record ? Object.entries(record).find(([k, v]) => v && typeof v === "object" && !["geometry", "provenance", "observed_at", "located_by"].includes(k)) : null;
    const props = body ? body[1] : p;
    const rows = Object.entries(props).filter(([, v]) => typeof v !== "object").map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    openPanel(`<h3>${esc(p.label || p.station || feature.id || "")}</h3>
      <p class="note">${esc(info ? label(info) : "")}${record ? ` · ${t("agency")} ${esc(record.agency)} · ${t("time")} ${esc(record.observed_at)}` : ""}</p>
      <dl class="props">${rows}</dl>`);
  }

  function openPanel(html) {
    $("panel-body").innerHTML = html;
    $("panel").hidden = false;
  }

  map.on("click", (e) => {
    const pointLayers = layerInfo.filter((l) => l.geometry === "points").map((l) => `${l.name}-main`).filter((id) => map.getLayer(id));
    const points = map.queryRenderedFeatures(e.point, { layers: pointLayers });
    if (points.length) return showPoint(points[0]);
    const cells = map.queryRenderedFeatures(e.point, { layers: ["risk-main", "response-main", "water_coverage-main"].filter((id) => map.getLayer(id)) });
    if (cells.length) showCell(cells[0].properties.cell).catch((err) => openPanel(esc(err.message)));
  });
  $("panel-close").addEventListener("click", () => { $("panel").hidden = true; });
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("onemap.lang", lang);
    renderText();
    if (panelCell && !$("panel").hidden) showCell(panelCell).catch(() => {});
  });

  map.on("load", async () => {
    try {
      await addLayers();
    } catch (e) {
      openPanel(esc(e.message));
    }
    lastUpdate = new Date();
    map.on("moveend", () => followView().catch(() => {}));
    connectStream();
    checkFeeds();
    setInterval(checkFeeds, 30000);
    renderStatus();
    document.body.dataset.ready = "true";
  });
  renderText();
})();
