// The one-map: every layer the hub serves on one live map. Plain JavaScript, no build step.
// The cell layers, the buildings and the fixed point layers come as vector tiles (/tiles/...),
// generalised by the hub below street zoom; the live overlays (alarms, incidents, fire weather,
// warnings) as GeoJSON for the area around the view. Map text comes only from this page
// (legend, panel): MapLibre draws no labels, so no glyphs are fetched from anywhere.
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
      partialMore: "{layer}过多，请放大：仅显示 {shown} 个", cells: "网格数", zoomIn: "放大查看",
      buildings: "建筑轮廓", cluster: "{count} 个", count: "数量", signIn: "登录", signOut: "退出",
      byUser: "用户名和密码", byKey: "API 密钥", userName: "用户名", password: "密码", apiKey: "API 密钥",
      signedInAs: "已登录：{who}（{role}）", localViewer: "本机查看", alerts: "告警", fire_alarm: "火警",
      fault: "故障", incident: "警情", cap_received: "气象预警", cap_drafted: "风险预警", acknowledge: "确认",
      acknowledgedBy: "已确认：{who}", unplaced: "区域未能定位（不在地图上）", districtsTitle: "辖区", allDistricts: "全部辖区", statsRanking: "统计与排名",
      rank: "排名", district: "辖区", highCells: "红橙网格", openAlarms: "未处理火警/故障", hydrantRate: "消火栓完好率",
      within5: "5分钟覆盖面积", devicesOnline: "物联网设备在线", searchHint: "搜索建筑、单位、地址或记录",
      noResults: "无结果", exportPng: "导出 PNG", exportPdf: "导出 PDF", sourcesLine: "数据来源",
      nearbyTitle: "周边 {r} 米", nearbyHydrants: "在用消火栓", nearbyStations: "最近消防站", nearbyHospitals: "有空床医院",
      nearbyUnits: "重点单位", nearbyHazards: "未整改隐患", travel: "约 {m} 分钟", beds: "急诊 {e} · 烧伤 {b}", none: "无",
      from: "来自 {hub}", age: "数据更新于{age}", staleLayer: "超时", minutes: " {n} 分钟前", hours: " {n} 小时前", days: " {n} 天前", justNow: "刚刚",
      replayIncident: "回放警情第一小时",
    },
    en: {
      title: "firehub one-map", layers: "Layers", live: "live", connecting: "connecting",
      down: "disconnected", updated: "updated", stale: "stale feeds", level: "level",
      score: "score", factor: "factor", weight: "weight", contribution: "contribution",
      sources: "sources", cell: "cell", noData: "no data", building: "building", alarm: "alarm",
      weather: "weather", water: "water", response: "response", medical: "medical",
      public_safety: "public safety", agency: "agency", time: "time", outlines: "districts",
      partialCells: "zoom in: {shown} of {all} cells shown", partial: "zoom in: {shown} of {all} shown ({layer})",
      partialMore: "zoom in: only {shown} shown, more in view ({layer})", cells: "cells",
      zoomIn: "zoom in", buildings: "building footprints", cluster: "{count} places", count: "count",
      signIn: "Sign in", signOut: "Sign out", byUser: "user and password", byKey: "API key",
      userName: "user name", password: "password", apiKey: "API key", signedInAs: "signed in: {who} ({role})",
      localViewer: "local viewer", alerts: "Alerts", fire_alarm: "fire alarm", fault: "fault",
      incident: "incident", cap_received: "weather warning", cap_drafted: "risk warning",
      acknowledge: "acknowledge", acknowledgedBy: "acknowledged by {who}", unplaced: "area not placed (not on the map)", districtsTitle: "Districts",
      allDistricts: "all districts", statsRanking: "statistics and ranking", rank: "rank", district: "district",
      highCells: "red/orange cells", openAlarms: "open alarms/faults", hydrantRate: "hydrants intact",
      within5: "area within 5 min", devicesOnline: "IoT devices online",
      searchHint: "search buildings, units, addresses, records", noResults: "nothing found",
      exportPng: "export PNG", exportPdf: "export PDF", sourcesLine: "data sources",
      nearbyTitle: "within {r} m", nearbyHydrants: "in-service hydrants", nearbyStations: "nearest stations",
      nearbyHospitals: "hospitals with free beds", nearbyUnits: "key units", nearbyHazards: "open hazards",
      travel: "about {m} min", beds: "emergency {e} · burn {b}", none: "none",
      from: "from {hub}", age: "data {age}", staleLayer: "stale", minutes: "{n} min ago", hours: "{n} h ago", days: "{n} d ago", justNow: "just now",
      replayIncident: "replay the incident's first hour",
    },
  };
  // Layers drawn as cells (fill by a colour property) and which property colours them.
  const CELL_COLOUR = { risk: "colour", response: "response_colour", water_coverage: "water_colour" };
  // Layers read as vector tiles; the others are live overlays read as GeoJSON for the area
  // around the view, at most OVERLAY_LIMIT features each.
  const TILED = new Set(["risk", "response", "water_coverage", "parent_risk", "hydrants", "stations", "hospitals", "key_units",
                         "alarms", "incidents"]);
  const OVERLAY_LIMIT = 20000;
  const areaParam = () => (overlayArea ? `&bbox=${overlayArea.map((v) => v.toFixed(5)).join(",")}` : "");
  const overlayUrl = (name) => `/api/v1/layers/${name}?limit=${OVERLAY_LIMIT}${name !== "warnings" ? areaParam() : ""}`;
  const tileUrl = (name) => `${location.origin}/tiles/${name}/{z}/{x}/{y}.mvt`;
  const VISIBLE_AT_START = new Set(["risk", "alarms", "stations", "warnings", "buildings"]);
  const loaded = new Set();  // overlays fetched so far (hidden ones are fetched when first shown)
  const BUILDINGS = { name: "buildings", title: "Building footprints", title_zh: "建筑轮廓", geometry: "footprints",
                      legend: [{ key: "key_unit", label: "key unit", label_zh: "重点单位", colour: "#542788" },
                               { key: "other", label: "building", label_zh: "建筑", colour: "#9aa5b1" }] };
  let gridZoom = 11;  // from this zoom the cell tiles draw the grid's own cells (TileJSON grid_zoom)

  let overlayArea = null;  // [west, south, east, north] the overlays were read for
  // layer -> {shown, all} when its area held more than was read (all null: the hub said "more"
  // without a count)
  const partial = new Map();
  let lang = localStorage.getItem("onemap.lang") || "zh";
  let layerInfo = [];
  let hasOutlines = false;
  const riskCells = new Map();  // token -> the newest feature the stream sent for the cell
  const t = (key) => TEXT[lang][key] || key;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

  // A basemap that cannot be reached (offline) is no error on the page: its tiles are left out.
  const quietSources = new Set(["basemap"]);
  const map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {}, layers: [{ id: "background", type: "background", paint: { "background-color": "#eef2f5" } }] },
    center: [123.43, 41.8],
    zoom: 10.5,
    attributionControl: false,
  });
  map.on("error", (e) => { if (!quietSources.has(e.sourceId) && !String(e.sourceId).startsWith("basemap:")) console.error(e.error || e); });
  window.onemap = { map, riskCells, overlayArea: () => overlayArea, session: () => session, write,
                    alerts: () => alertData,  // for operators' consoles and the browser test
                    getJson, openPanel, esc, lang: () => lang, levelName };  // and timeline.js

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (r.status === 401) showSignIn();  // signed out, or the session ended
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  // --- Sign-in ---
  // A browser on the hub's machine reads as the local viewer; any other signs in (a user's name
  // and password, or an API key) and gets a session cookie (HttpOnly, SameSite=Strict). Writes
  // carry the session's CSRF token.
  let session = null;
  let signInMode = "user";
  function showSignIn(message) {
    $("signin").hidden = false;
    $("signin-error").hidden = !message;
    $("signin-error").textContent = message || "";
    (signInMode === "user" ? $("signin-user") : $("signin-key")).focus();
  }
  function setSignInMode(mode) {
    signInMode = mode;
    document.querySelectorAll("#signin .tabs button").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
    document.querySelectorAll("#signin label[data-field]").forEach((l) => { l.hidden = l.dataset.field !== mode; });
  }
  document.querySelectorAll("#signin .tabs button").forEach((b) => b.addEventListener("click", () => setSignInMode(b.dataset.mode)));
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = signInMode === "user" ? { user: $("signin-user").value, password: $("signin-password").value }
                                       : { key: $("signin-key").value };
    const r = await fetch("/api/v1/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) {
      const error = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
      return showSignIn(error.detail);
    }
    location.reload();
  });
  $("signout").addEventListener("click", async () => {
    await fetch("/api/v1/session", { method: "DELETE", headers: { "x-csrf-token": session?.csrf || "" } });
    location.reload();
  });
  // A write as the page makes it: with the session's CSRF token.
  async function write(method, url, body) {
    const headers = { "content-type": "application/json" };
    if (session?.csrf) headers["x-csrf-token"] = session.csrf;
    const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(answer.detail || `HTTP ${r.status}`);
    return answer;
  }
  async function loadSession() {
    const r = await fetch("/api/v1/session", { cache: "no-store" });
    if (r.status === 401) { showSignIn(); return false; }
    session = await r.json();
    $("signout").hidden = !session.session;
    return true;
  }
  // --- Alerts: newest first; a click flies to the place and marks it; operators acknowledge ---
  const KIND_COLOUR = { fire_alarm: "#ff0000", fault: "#ff9900", incident: "#7b3294", cap_received: "#8856a7", cap_drafted: "#e31a1c" };
  let alertData = { alerts: [], total: 0 };
  let focusedAlert = null;
  async function loadAlerts() {
    alertData = await getJson("/api/v1/alerts?limit=200");
    renderAlerts();
  }
  function renderAlerts() {
    const box = $("alerts");
    box.innerHTML = "";
    $("alert-count").textContent = alertData.total ? `(${alertData.total})` : "";
    const canAck = session && (session.role === "admin" || session.role === "operator");
    for (const a of alertData.alerts) {
      const div = document.createElement("div");
      div.className = `alert${a.id === focusedAlert ? " focused" : ""}`;
      div.dataset.id = a.id;
      const when = new Date(a.at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
      const ack = a.acknowledged ? `<div class="note acked">${esc(t("acknowledgedBy").replace("{who}", a.acknowledged.by))}</div>`
        : canAck ? `<button type="button" class="ack">${esc(t("acknowledge"))}</button>` : "";
      div.innerHTML = `<span class="swatch point" style="background:${KIND_COLOUR[a.kind] || "#777"}"></span>` +
        `<div class="alert-body"><b>${esc(t(a.kind))} · ${esc(a.title)}</b>${a.origin ? ` <span class="origin">${esc(t("from").replace("{hub}", a.origin))}</span>` : ""}<div class="note">${esc(when)} ${esc(a.detail)}</div>${a.unplaced ? `<div class="note">${esc(t("unplaced"))}</div>` : ""}${ack}</div>`;
      div.addEventListener("click", (e) => {
        if (e.target.classList.contains("ack")) {
          write("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/ack`).then(loadAlerts, (err) => openPanel(esc(err.message)));
          return;
        }
        focusAlert(a);
      });
      box.appendChild(div);
    }
  }
  // Incident focus: what lies around a place, in the panel, the radius drawn on the map.
  const NEARBY_RADIUS_M = 1000;
  async function showNearby(point) {
    const near = await getJson(`/api/v1/nearby?lon=${point[0]}&lat=${point[1]}&radius_m=${NEARBY_RADIUS_M}`);
    const ring = [];
    for (let i = 0; i <= 64; i++) {
      const a = (i / 64) * 2 * Math.PI;
      ring.push([point[0] + (NEARBY_RADIUS_M / (111320 * Math.cos(point[1] * Math.PI / 180))) * Math.cos(a),
                 point[1] + (NEARBY_RADIUS_M / 111320) * Math.sin(a)]);
    }
    map.getSource("nearby")?.setData({ type: "Feature", geometry: { type: "Polygon", coordinates: [ring] }, properties: {} });
    const section = (key, title, items, extra) => `<h4>${esc(t(title))} (${items.length})</h4><ul data-nearby="${key}">` +
      (items.length ? items.map((i) => `<li data-point="${i.point.join(",")}">${esc(i.label)} · ${i.distance_m} m${extra ? ` · ${esc(extra(i))}` : ""}</li>`).join("")
                    : `<li class="note">${esc(t("none"))}</li>`) + "</ul>";
    panelCell = null;
    openPanel(`<h3>${esc(t("nearbyTitle").replace("{r}", near.radius_m))}</h3>` +
      section("stations", "nearbyStations", near.stations, (i) => t("travel").replace("{m}", Math.round(i.travel_s / 60))) +
      section("hydrants", "nearbyHydrants", near.hydrants, (i) => (i.pressure_mpa !== undefined ? `${i.pressure_mpa} MPa` : "")) +
      section("hospitals", "nearbyHospitals", near.hospitals, (i) => t("beds").replace("{e}", i.beds_emergency).replace("{b}", i.beds_burn)) +
      section("key_units", "nearbyUnits", near.key_units) +
      section("hazards", "nearbyHazards", near.hazards, (i) => i.type + (i.major ? " !" : "")));
    document.querySelectorAll("#panel li[data-point]").forEach((li) => li.addEventListener("click", () =>
      map.flyTo({ center: li.dataset.point.split(",").map(Number), zoom: Math.max(map.getZoom(), 16) })));
  }

  function focusAlert(a) {
    focusedAlert = a.id;
    if (!a.point) {  // a warning whose area the hub could not place: said in the panel, not drawn
      renderAlerts();
      openPanel(`<h3>${esc(a.title)}</h3><p class="note">${esc(t("unplaced"))}: ${esc(a.unplaced || "")}</p>`);
      return;
    }
    map.getSource("focus")?.setData({ type: "Feature", geometry: { type: "Point", coordinates: a.point }, properties: { id: a.id } });
    map.flyTo({ center: a.point, zoom: Math.max(map.getZoom(), a.kind.startsWith("cap") ? 11 : 15) });
    renderAlerts();
    if (["fire_alarm", "fault", "incident"].includes(a.kind)) showNearby(a.point).catch((err) => openPanel(esc(err.message)));
  }

  // --- Export: the current view as PNG or PDF, with title, legend, time and data sources ---
  async function composeView() {
    const feeds = ((await getJson("/api/v1/feeds").catch(() => ({ feeds: [] }))).feeds || []);
    const agencies = [...new Set(feeds.map((f) => f.agency))].sort();
    const shot = await new Promise((resolve) => {
      map.once("render", () => {  // the drawing buffer is whole only within this frame
        const gl = map.getCanvas();
        const copy = document.createElement("canvas");
        copy.width = gl.width;
        copy.height = gl.height;
        copy.getContext("2d").drawImage(gl, 0, 0);
        resolve(copy);
      });
      map.triggerRepaint();
    });
    const scale = shot.width / map.getCanvas().clientWidth;
    const head = Math.round(56 * scale), foot = Math.round(72 * scale);
    const out = document.createElement("canvas");
    out.width = shot.width;
    out.height = shot.height + head + foot;
    const g = out.getContext("2d");
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, out.width, out.height);
    g.drawImage(shot, 0, head);
    g.fillStyle = "#16202b";
    g.fillRect(0, 0, out.width, head);
    g.fillStyle = "#ffffff";
    g.font = `${Math.round(22 * scale)}px "WenQuanYi Micro Hei", sans-serif`;
    g.fillText(t("title"), 16 * scale, 36 * scale);
    const when = new Date().toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
    g.font = `${Math.round(14 * scale)}px "WenQuanYi Micro Hei", sans-serif`;
    g.fillText(when, out.width - g.measureText(when).width - 16 * scale, 34 * scale);
    // The legend of the layers shown, then the data sources.
    let x = 16 * scale;
    const y = head + shot.height + 24 * scale;
    g.fillStyle = "#1d2733";
    for (const info of layerInfo.filter((i) => isShown(i.name))) {
      for (const e of info.legend || []) {
        const text = legendLabel(e);
        if (x + (24 + g.measureText(text).width) * 1 > out.width) break;
        g.fillStyle = e.colour;
        g.fillRect(x, y - 11 * scale, 12 * scale, 12 * scale);
        g.fillStyle = "#1d2733";
        g.fillText(text, x + 16 * scale, y);
        x += 16 * scale + g.measureText(text).width + 14 * scale;
      }
    }
    g.fillText(`${t("sourcesLine")}: ${agencies.join(", ") || "—"} · firehub`, 16 * scale, y + 30 * scale);
    return out;
  }
  function download(url, name) {
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  // jsPDF is read only when a PDF is asked for: parsing it would delay the first view.
  const scripts = new Map();
  function loadScript(src) {
    if (!scripts.has(src)) {
      scripts.set(src, new Promise((resolve, reject) => {
        const el = document.createElement("script");
        el.src = src;
        el.onload = resolve;
        el.onerror = () => { scripts.delete(src); reject(new Error(`${src}: not loaded`)); };
        document.head.appendChild(el);
      }));
    }
    return scripts.get(src);
  }
  const stamp = () => new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  $("export-png").addEventListener("click", async () => {
    const view = await composeView();
    download(view.toDataURL("image/png"), `onemap-${stamp()}.png`);
  });
  $("export-pdf").addEventListener("click", async () => {
    const [view] = await Promise.all([composeView(), loadScript("jspdf.umd.min.js")]);
    const pdf = new window.jspdf.jsPDF({ orientation: view.width >= view.height ? "landscape" : "portrait",
                                         unit: "px", format: [view.width, view.height], hotfixes: ["px_scaling"] });
    pdf.addImage(view.toDataURL("image/png"), "PNG", 0, 0, view.width, view.height);
    pdf.setProperties({ title: t("title"), creator: "firehub" });
    pdf.save(`onemap-${stamp()}.pdf`);
  });

  // --- Search: a record id, or a building, unit, hydrant, station or hospital by name or address ---
  let searchTimer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 300);
  });
  $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(searchTimer); runSearch(); } });
  async function runSearch() {
    const q = $("search").value.trim();
    const box = $("search-results");
    if (q.length < 2) { box.hidden = true; return; }
    const found = await getJson(`/api/v1/search?q=${encodeURIComponent(q)}&limit=20`).catch(() => null);
    if (!found || $("search").value.trim() !== q) return;  // a newer search is on its way
    box.innerHTML = found.results.length ? "" : `<div class="search-result note">${esc(t("noResults"))}</div>`;
    for (const r of found.results) {
      const div = document.createElement("div");
      div.className = "search-result";
      div.dataset.record = r.record_id;
      div.innerHTML = `<b>${esc(r.label)}</b> <span class="note">${esc(r.domain)} · ${esc(r.entity_id)}</span>` +
        (r.address ? `<div class="note">${esc(r.address)}</div>` : "");
      div.addEventListener("click", () => {
        box.hidden = true;
        focusAlert({ id: r.record_id, kind: "place", point: r.point });
      });
      box.appendChild(div);
    }
    box.hidden = false;
  }

  // --- Districts: a filter per district (map.outlines) and their statistics and ranking ---
  let outlineFeatures = [];
  let districtStats = null;
  let selectedDistrict = "";
  function renderDistricts() {
    $("district-box").hidden = outlineFeatures.length === 0;
    const select = $("district");
    select.innerHTML = `<option value="">${esc(t("allDistricts"))}</option>` +
      outlineFeatures.map((f) => `<option value="${esc(f.id)}">${esc(f.properties?.name || f.id)}</option>`).join("");
    select.value = selectedDistrict;
  }
  $("district").addEventListener("change", () => {
    selectedDistrict = $("district").value;
    const f = outlineFeatures.find((x) => String(x.id) === selectedDistrict);
    if (map.getLayer("district-focus")) map.setFilter("district-focus", ["==", ["get", "name"], f?.properties?.name ?? ""]);
    if (f) fitTo({ features: [f] });
    showDistrictStats().catch((err) => openPanel(esc(err.message)));
  });
  $("district-stats").addEventListener("click", () => showDistrictStats().catch((err) => openPanel(esc(err.message))));
  async function showDistrictStats() {
    panelCell = null;
    districtStats = await getJson("/api/v1/stats/districts");
    const risk = layerInfo.find((l) => l.name === "risk");
    const top = (risk ? risk.legend.slice(0, 2) : []).map((e) => e.key);
    const pct = (v) => `${(100 * v).toFixed(1)}%`;
    const rows = districtStats.districts.map((d) => {
      const high = top.reduce((n, k) => n + (d.cells_by_level[k] || 0), 0);
      return `<tr data-district="${esc(d.id)}" class="${String(d.id) === selectedDistrict ? "selected" : ""}">` +
        `<td class="num">${d.rank}</td><td>${esc(d.name)}</td><td class="num" data-stat="high">${high}</td>` +
        `<td class="num" data-stat="alarms">${d.open_fire_alarms}/${d.open_faults}</td>` +
        `<td class="num" data-stat="hydrants">${pct(d.hydrant_intact_rate)}</td>` +
        `<td class="num" data-stat="within5">${pct(d.area_within_5_min_share)}</td>` +
        `<td class="num" data-stat="devices">${d.iot_devices_online}/${d.iot_devices}</td></tr>`;
    }).join("");
    openPanel(`<h3>${esc(t("statsRanking"))}</h3><table class="stats"><thead><tr><th class="num">${t("rank")}</th><th>${t("district")}</th>` +
      `<th class="num">${t("highCells")}</th><th class="num">${t("openAlarms")}</th><th class="num">${t("hydrantRate")}</th>` +
      `<th class="num">${t("within5")}</th><th class="num">${t("devicesOnline")}</th></tr></thead><tbody>${rows}</tbody></table>` +
      `<p class="note">${esc(districtStats.generated_at)}</p>`);
  }

  function renderWho() {
    if (!session) return;
    $("who").textContent = session.anonymous ? t("localViewer")
      : t("signedInAs").replace("{who}", session.key_id).replace("{role}", session.role);
  }

  // An overlay's collection; notes when its area held more features than were sent.
  async function getLayer(name) {
    const data = await getJson(overlayUrl(name));
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

  // After a move: the overlays are read again when the view left their area, or when the area
  // was cut short and the view is now much smaller (zoomed in, so more detail fits). Hidden ones
  // are read when next shown. Tiled layers follow the view by themselves.
  let overlayGeneration = 0;
  async function followView() {
    if (!overlayArea) return;
    const b = map.getBounds();
    const view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    const inside = view[0] >= overlayArea[0] && view[1] >= overlayArea[1] && view[2] <= overlayArea[2] && view[3] <= overlayArea[3];
    const size = (a) => (a[2] - a[0]) * (a[3] - a[1]);
    if (inside && !(partial.size > 0 && size(view) * 16 <= size(overlayArea))) return;
    overlayArea = viewArea();
    const generation = ++overlayGeneration;
    const names = [...loaded].filter((n) => n !== "warnings" && isShown(n));
    [...loaded].filter((n) => n !== "warnings" && !names.includes(n)).forEach((n) => { loaded.delete(n); partial.delete(n); });
    const fetched = await Promise.all(names.map((n) => getLayer(n).catch(() => null)));
    if (generation !== overlayGeneration) return;  // a later move's read wins
    names.forEach((n, i) => { if (fetched[i]) map.getSource(n)?.setData(fetched[i]); });
    renderStatus();
  }

  const isShown = (name) => map.getLayer(`${name}-main`) && map.getLayoutProperty(`${name}-main`, "visibility") !== "none";

  function label(info) { return lang === "zh" ? info.title_zh : info.title; }
  function legendLabel(entry) { return lang === "zh" ? entry.label_zh : entry.label; }

  function renderText() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    $("lang").textContent = lang === "zh" ? "EN" : "中文";
    document.title = lang === "zh" ? "消防一张图 · firehub" : "firehub one-map";
    renderSidebar();
    renderStatus();
    renderWho();
    renderAlerts();
    renderDistricts();
  }

  function renderSidebar() {
    const box = $("layers");
    box.innerHTML = "";
    const outlinesEntry = { name: "outlines", title: TEXT.en.outlines, title_zh: TEXT.zh.outlines, geometry: "lines", legend: [] };
    const entries = layerInfo.length ? [...(hasOutlines ? [outlinesEntry] : []), ...layerInfo.slice(0, 3), BUILDINGS, ...layerInfo.slice(3)] : [];
    for (const info of entries) {
      const div = document.createElement("div");
      div.className = "layer";
      const id = `toggle-${info.name}`;
      const visible = map.getLayer(`${info.name}-main`) && map.getLayoutProperty(`${info.name}-main`, "visibility") !== "none";
      div.innerHTML = `<label for="${id}"><input type="checkbox" id="${id}" data-layer="${esc(info.name)}" ${visible ? "checked" : ""}>${esc(label(info))}</label>` + layerAge(info);
      const legend = document.createElement("div");
      legend.className = "legend";
      for (const e of info.legend || []) {
        const shape = info.geometry === "points" ? "swatch point" : "swatch";  // cells, areas, footprints
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
    if (on && hiddenSinceDelta.has(name) && map.getSource(name)) {
      hiddenSinceDelta.delete(name);
      map.removeFeatureState({ source: name, sourceLayer: name });  // older than its tiles now
      map.refreshTiles(name);
    }
    if (on && !TILED.has(name) && layerInfo.some((info) => info.name === name) && !loaded.has(name)) {
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
    const [outlines, risk, settings, layers] = await firstData;
    hasOutlines = (outlines.features || []).length > 0;  // a hub without map.outlines draws none
    outlineFeatures = outlines.features || [];
    map.addSource("outlines", { type: "geojson", data: outlines });
    map.addLayer({ id: "outlines-main", type: "line", source: "outlines", paint: { "line-color": "#6b7b8c", "line-width": 1.5, "line-dasharray": [3, 2] } });
    map.addLayer({ id: "district-focus", type: "line", source: "outlines", filter: ["==", ["get", "name"], ""],
                   paint: { "line-color": "#b2182b", "line-width": 3 } });
    if (risk && Number.isInteger(risk.grid_zoom)) gridZoom = risk.grid_zoom;
    // The basemap (an intranet raster tile service), under everything; unreachable, the map
    // simply has none.
    if (settings.basemap && settings.basemap_kind === "style") {
      addStyleBasemap(settings.basemap, settings.basemap_attribution);  // when its style arrives
    } else if (settings.basemap) {
      map.addSource("basemap", { type: "raster", tiles: [settings.basemap], tileSize: 256, attribution: settings.basemap_attribution || "" });
      map.addLayer({ id: "basemap", type: "raster", source: "basemap" }, "outlines-main");
      map.addControl(new maplibregl.AttributionControl({ compact: true }));
    }
    const view = (settings.initial_view || "").split(",").map(Number);
    if (view.length === 3 && view.every(Number.isFinite)) map.jumpTo({ center: [view[0], view[1]], zoom: view[2] });
    else if (hasOutlines) fitTo(outlines);
    else if (risk && risk.bounds && risk.bounds[0] > -180) map.fitBounds([risk.bounds.slice(0, 2), risk.bounds.slice(2)], { padding: 20, animate: false });
    overlayArea = viewArea();

    layerInfo = layers.layers;
    // The overlays shown at start are fetched together; a hidden one when it is first shown.
    const empty = { type: "FeatureCollection", features: [] };
    const shownOverlays = layerInfo.filter((info) => !TILED.has(info.name) && VISIBLE_AT_START.has(info.name));
    const fetched = new Map(await Promise.all(shownOverlays.map(async (info) => [info.name, await getLayer(info.name)])));
    shownOverlays.forEach((info) => loaded.add(info.name));
    const visibility = (name) => (VISIBLE_AT_START.has(name) ? "visible" : "none");
    map.addSource("buildings", { type: "vector", tiles: [tileUrl("buildings")], minzoom: 15, maxzoom: 16 });
    for (const info of layerInfo) {
      const layout = { visibility: visibility(info.name) };
      if (TILED.has(info.name)) {
        map.addSource(info.name, { type: "vector", tiles: [tileUrl(info.name)], minzoom: 0, maxzoom: 16,
                                   promoteId: info.geometry === "cells" ? { [info.name]: "cell" } : undefined });
      } else {
        map.addSource(info.name, { type: "geojson", data: fetched.get(info.name) || empty });
      }
      const tiled = TILED.has(info.name) ? { "source-layer": info.name } : {};
      if (info.geometry === "cells") {
        // The parent hub's cells (parent_risk) carry their own colour and follow no delta here.
        const colour = CELL_COLOUR[info.name] || "colour";
        // A delta's colour (feature-state) until the tile itself carries it.
        map.addLayer({ id: `${info.name}-main`, type: "fill", source: info.name, ...tiled, layout,
                       paint: { "fill-color": ["coalesce", ["feature-state", colour], ["get", colour]],
                                "fill-opacity": ["case", ["boolean", ["feature-state", "removed"], false], 0,
                                                 CELL_COLOUR[info.name] ? 0.55 : 0.35],
                                "fill-outline-color": "rgba(0,0,0,0.15)" } });
      } else if (info.geometry === "areas") {
        map.addLayer({ id: `${info.name}-main`, type: "fill", source: info.name, layout,
                       paint: { "fill-color": ["match", ["get", "kind"], "drafted", "#e31a1c", "#8856a7"], "fill-opacity": 0.12 } });
        map.addLayer({ id: `${info.name}-line`, type: "line", source: info.name, layout,
                       paint: { "line-color": ["match", ["get", "kind"], "drafted", "#e31a1c", "#8856a7"], "line-width": 2 } });
      } else {
        const property = info.name === "weather_stations" ? "danger_class" : "state";
        const base = info.name === "alarms" ? 7 : 5;
        // A cluster of the hub's (count > 1) grows with what it holds.
        const radius = TILED.has(info.name)
          ? ["interpolate", ["linear"], ["coalesce", ["get", "count"], 1], 1, base, 10, base + 4, 1000, base + 12]
          : base;
        map.addLayer({ id: `${info.name}-main`, type: "circle", source: info.name, ...tiled, layout,
                       paint: { "circle-color": colourByState(info, property), "circle-radius": radius,
                                "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 } });
      }
      if (info.name === "water_coverage") {
        map.addLayer({ id: "buildings-main", type: "fill", source: "buildings", "source-layer": "buildings",
                       layout: { visibility: visibility("buildings") },
                       paint: { "fill-color": ["case", ["get", "key_unit"], "#542788", "#9aa5b1"],
                                // data-driven like the cells' opacity, so both share one compiled
                                // shader: a new one costs a visible pause under software GL
                                "fill-opacity": ["case", ["get", "key_unit"], 0.7, 0.6],
                                "fill-outline-color": "#4a5560" } });
      }
    }
    map.addSource("nearby", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "nearby-line", type: "line", source: "nearby", paint: { "line-color": "#b2182b", "line-width": 2, "line-dasharray": [2, 2] } });
    map.addSource("focus", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "focus-ring", type: "circle", source: "focus",
                   paint: { "circle-radius": 18, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#ff0000", "circle-stroke-width": 3 } });
    map.moveLayer("outlines-main");
    ["hydrants", "stations", "hospitals", "key_units", "incidents", "weather_stations", "alarms"].forEach((n) => map.getLayer(`${n}-main`) && map.moveLayer(`${n}-main`));
    renderText();
  }

  // A vector basemap: a MapLibre style (the province's map service) whose sources and layers go
  // under the hub's, renamed "basemap:…". A style that cannot be read leaves the map without one.
  async function addStyleBasemap(url, attribution) {
    let style;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(10000), credentials: "omit" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      style = await r.json();
    } catch (e) {
      console.warn(`basemap style ${url}: ${e.message}`);
      return;
    }
    // Under every layer of the hub's (the style may arrive after they were all added and the
    // outlines moved to the top).
    const below = map.getStyle().layers.find((l) => l.id !== "background" && !l.id.startsWith("basemap:"))?.id;
    try {
      if (style.glyphs) map.setGlyphs(new URL(style.glyphs, url).href.replaceAll("%7B", "{").replaceAll("%7D", "}"));
      if (typeof style.sprite === "string") map.setSprite(new URL(style.sprite, url).href);
      for (const [name, source] of Object.entries(style.sources || {})) {
        const own = { ...source };
        if (typeof own.url === "string") own.url = new URL(own.url, url).href;
        if (Array.isArray(own.tiles)) own.tiles = own.tiles.map((t) => new URL(t, url).href.replaceAll("%7B", "{").replaceAll("%7D", "}"));
        if (attribution) own.attribution = attribution;
        map.addSource(`basemap:${name}`, own);
      }
      for (const layer of style.layers || []) {
        const own = { ...layer, id: `basemap:${layer.id}` };
        if (layer.source) own.source = `basemap:${layer.source}`;
        map.addLayer(own, below);
      }
      map.addControl(new maplibregl.AttributionControl({ compact: true }));
    } catch (e) {
      console.warn(`basemap style ${url}: ${e.message}`);
    }
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
    const cut = [...partial.entries()].filter(([n]) => isShown(n));
    $("partial").hidden = cut.length === 0;
    if (cut.length) {
      const [name, { shown, all }] = cut[0];
      const info = layerInfo.find((i) => i.name === name);
      const text = all === null ? "partialMore" : "partial";
      $("partial").textContent = t(text).replace("{shown}", shown)
        .replace("{all}", all).replace("{layer}", info ? label(info) : name);
    }
  }

  let panelCell = null;  // the cell whose explanation is open, refreshed when it changes

  // --- Live deltas on the tiles ---
  // A changed grid cell is restyled in place (feature-state keyed by its S2 token); the tiles
  // that hold it are fetched again (batched) where the tile cannot show the change by itself:
  // below the grid's zoom (the summaries moved), and for a cell that appeared. A cell that left
  // is hidden at once and the source's tiles refreshed.
  const tileZoom = () => Math.max(0, Math.min(16, Math.floor(map.getZoom())));
  const mercator = (z, lon, lat) => {
    const n = 2 ** z, phi = Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180;
    return [(lon + 180) / 360 * n, (1 - Math.asinh(Math.tan(phi)) / Math.PI) / 2 * n];
  };
  function tilesOf(feature, z) {
    const ring = feature.geometry.coordinates[0];
    const lons = ring.map((p) => p[0]), lats = ring.map((p) => p[1]);
    const [x0, y0] = mercator(z, Math.min(...lons), Math.max(...lats));
    const [x1, y1] = mercator(z, Math.max(...lons), Math.min(...lats));
    const m = 1 / 16, n = 2 ** z, out = [];
    for (let x = Math.max(0, Math.floor(x0 - m)); x <= Math.min(n - 1, Math.floor(x1 + m)); x++) {
      for (let y = Math.max(0, Math.floor(y0 - m)); y <= Math.min(n - 1, Math.floor(y1 + m)); y++) out.push({ x, y, z });
    }
    return out;
  }
  const refreshing = { tiles: new Map(), all: false, timer: null };
  function refreshLater(tiles, all) {
    tiles.forEach((t) => refreshing.tiles.set(`${t.z}/${t.x}/${t.y}`, t));
    refreshing.all ||= all;
    if (refreshing.timer) return;
    refreshing.timer = setTimeout(() => {
      const ids = [...refreshing.tiles.values()], all = refreshing.all;
      refreshing.tiles.clear();
      refreshing.all = false;
      refreshing.timer = null;
      for (const name of Object.keys(CELL_COLOUR)) {
        if (!map.getSource(name)) continue;
        if (all) map.refreshTiles(name);
        else if (ids.length) map.refreshTiles(name, ids);
      }
    }, 250);
  }

  function applyDelta(delta) {
    const z = tileZoom(), refresh = [];
    for (const f of delta.features) {
      riskCells.set(f.id, f);
      for (const name of Object.keys(CELL_COLOUR)) {
        // A hidden layer's tiles are read again when it is shown: its states can wait.
        if (!map.getSource(name) || !isShown(name)) continue;
        const colour = CELL_COLOUR[name];
        map.setFeatureState({ source: name, sourceLayer: name, id: f.id },
                            { [colour]: f.properties[colour], level: f.properties.level, removed: false });
      }
      const appeared = f.properties.previous_level === undefined;
      if (z < gridZoom || appeared) refresh.push(...tilesOf(f, z));
    }
    for (const token of delta.removed) {
      riskCells.delete(token);
      for (const name of Object.keys(CELL_COLOUR)) {
        if (map.getSource(name)) map.setFeatureState({ source: name, sourceLayer: name, id: token }, { removed: true });
      }
    }
    refreshLater(refresh, delta.removed.length > 0);
    hiddenSinceDelta = new Set(Object.keys(CELL_COLOUR).filter((n) => !isShown(n)));
    if (panelCell && !$("panel").hidden && delta.features.some((f) => f.id === panelCell)) {
      showCell(panelCell).catch(() => {});
    }
    lastUpdate = new Date();
    refreshSoon(["alarms"].concat(delta.warnings.length ? ["warnings"] : []));
    alertsSoon();
    renderStatus();
    window.dispatchEvent(new CustomEvent("onemap:delta", { detail: delta }));  // for consoles and the bench
  }

  // Cell layers hidden while deltas came: their tiles are read again when shown.
  let hiddenSinceDelta = new Set();

  // The alert list and the point overlays follow the deltas at most every two seconds: a busy
  // province changes a hundred cells a second, and reading them again each time would hold the
  // page's thread.
  let alertsTimer = null;
  function alertsSoon() {
    if (alertsTimer) return;
    alertsTimer = setTimeout(() => { alertsTimer = null; loadAlerts().catch(() => {}); }, 2000);
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
        const source = map.getSource(n);
        if (!source) continue;
        if (TILED.has(n)) {
          if (isShown(n)) map.refreshTiles(n);  // unchanged tiles answer 304
          continue;
        }
        if (!loaded.has(n)) continue;  // fetched when first shown
        source.setData(await getLayer(n).catch(() => ({ type: "FeatureCollection", features: [] })));
      }
    }, 2000);
  }

  // The stream lost its place (the hub restarted, or the page fell too far behind): every tile
  // of the cell layers is read again and the kept states go.
  function reloadRisk() {
    riskCells.clear();
    for (const name of Object.keys(CELL_COLOUR)) {
      if (!map.getSource(name)) continue;
      map.removeFeatureState({ source: name, sourceLayer: name });
      map.refreshTiles(name);
    }
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
    es.addEventListener("reset", () => reloadRisk());
  }

  // Data age per layer: the newest record among the feeds of the layer's domains, stale when a
  // feed of them is past twice its cadence.
  let feedList = [];
  let connectorDomain = {};
  function ageText(ms) {
    const m = Math.floor(ms / 60000);
    if (m < 1) return t("justNow");
    if (m < 120) return t("minutes").replace("{n}", m);
    if (m < 48 * 60) return t("hours").replace("{n}", Math.floor(m / 60));
    return t("days").replace("{n}", Math.floor(m / 1440));
  }
  function layerAge(info) {
    const feeds = feedList.filter((f) => (info.domains || []).includes(connectorDomain[f.connector]) && f.last_record_at);
    if (!feeds.length) return "";
    const newest = Math.max(...feeds.map((f) => Date.parse(f.last_record_at)));
    const stale = feeds.some((f) => f.stale);
    return `<div class="note age${stale ? " stale-age" : ""}" data-age-layer="${esc(info.name)}">${esc(t("age").replace("{age}", ageText(Date.now() - newest)))}${stale ? ` · ${esc(t("staleLayer"))}` : ""}</div>`;
  }

  async function checkFeeds() {
    try {
      if (!Object.keys(connectorDomain).length) {
        const plugins = (await getJson("/api/v1/plugins").catch(() => ({ plugins: [] }))).plugins || [];
        connectorDomain = Object.fromEntries(plugins.map((p) => [p.id, p.domain]));
      }
      const feeds = (await getJson("/api/v1/feeds")).feeds || [];
      feedList = feeds;
      renderSidebar();
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

  // A point: an overlay's feature carries its record; a tiled one is read by its id (OGC API).
  // A cluster of the hub's says how many it holds and zooms in on them.
  async function showPoint(feature, at) {
    panelCell = null;
    const info = layerInfo.find((l) => feature.layer.id === `${l.name}-main`);
    let p = feature.properties;
    if (TILED.has(info?.name) && p.count > 1) {
      const state = info.legend.find((e) => e.key === p.state);
      openPanel(`<h3>${esc(label(info))}</h3><p>${esc(t("cluster").replace("{count}", p.count))}` +
                `${state ? ` · <span class="swatch point" style="display:inline-block;background:${esc(state.colour)}"></span> ${esc(legendLabel(state))}` : ""}</p>`);
      map.easeTo({ center: at, zoom: Math.min(map.getZoom() + 2, 18) });
      return;
    }
    if (TILED.has(info?.name)) {
      const item = await getJson(`/ogc/collections/${info.name}/items/${encodeURIComponent(p.id)}`);
      p = { ...item.properties, label: p.label };
    }
    const record = typeof p.record === "string" ? JSON.parse(p.record) : p.record;
    const body = record ? Object.entries(record).find(([k, v]) => v && typeof v === "object" && !["geometry", "provenance", "observed_at", "located_by"].includes(k)) : null;
    const props = body ? body[1] : p;
    const rows = Object.entries(props).filter(([, v]) => typeof v !== "object").map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
    // An incident's first hour can be replayed on the time bar (timeline.js).
    const replay = info?.name === "incidents" && record ? `<button type="button" class="link" data-replay="${esc(record.observed_at)}">${t("replayIncident")}</button>` : "";
    openPanel(`<h3>${esc(p.label || p.station || feature.id || "")}</h3>
      <p class="note">${esc(info ? label(info) : "")}${record ? ` · ${t("agency")} ${esc(record.agency)} · ${t("time")} ${esc(record.observed_at)}` : ""}</p>
      ${replay}<dl class="props">${rows}</dl>`);
  }

  // A cell below the grid's zoom summarises the grid cells under it: how many at each level.
  function showSummary(feature, at) {
    panelCell = null;
    const p = feature.properties;
    const risk = layerInfo.find((l) => l.name === "risk");
    const rows = (risk ? risk.legend : []).map((e) => {
      const n = p[`count_${e.key}`] || 0;
      return `<tr><td><span class="level-badge" style="background:${esc(e.colour)}">${esc(legendLabel(e))}</span></td><td class="num">${n}</td></tr>`;
    }).join("");
    openPanel(`<h3>${t("cells")}</h3><p>${t("cells")} <b>${p.cells}</b> · ${t("score")} ≤ ${esc(p.score ?? "")}</p>
      <table><thead><tr><th>${t("level")}</th><th class="num">${t("count")}</th></tr></thead><tbody>${rows}</tbody></table>
      <p class="note">${t("zoomIn")}</p>`);
    map.easeTo({ center: at, zoom: Math.max(gridZoom, map.getZoom() + 2) });
  }

  function openPanel(html) {
    $("panel-body").innerHTML = html;
    $("panel").hidden = false;
  }

  map.on("click", (e) => {
    const pointLayers = layerInfo.filter((l) => l.geometry === "points").map((l) => `${l.name}-main`).filter((id) => map.getLayer(id));
    const points = map.queryRenderedFeatures(e.point, { layers: pointLayers });
    if (points.length) return showPoint(points[0], e.lngLat).catch((err) => openPanel(esc(err.message)));
    const cells = map.queryRenderedFeatures(e.point, { layers: ["risk-main", "response-main", "water_coverage-main"].filter((id) => map.getLayer(id)) });
    if (cells.length && cells[0].properties.cells !== undefined) return showSummary(cells[0], e.lngLat);
    if (cells.length) return showCell(cells[0].properties.cell).catch((err) => openPanel(esc(err.message)));
    const buildings = map.getLayer("buildings-main") ? map.queryRenderedFeatures(e.point, { layers: ["buildings-main"] }) : [];
    if (buildings.length) {
      getJson(`/ogc/collections/entities-building/items/${encodeURIComponent("building:" + buildings[0].properties.id)}`)
        .then((item) => showPoint({ layer: { id: "buildings-main" }, properties: { ...item.properties, label: buildings[0].properties.label } }))
        .catch((err) => openPanel(esc(err.message)));
    }
  });
  $("panel-close").addEventListener("click", () => { $("panel").hidden = true; });
  // A right click anywhere: what lies around it.
  map.on("contextmenu", (e) => showNearby([e.lngLat.lng, e.lngLat.lat]).catch((err) => openPanel(esc(err.message))));
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("onemap.lang", lang);
    renderText();
    if (panelCell && !$("panel").hidden) showCell(panelCell).catch(() => {});
  });

  // What the first view needs is asked for at once, together, while MapLibre starts.
  const sessionReady = loadSession().catch(() => false);
  const firstData = Promise.all([
    getJson("/api/v1/outlines").catch(() => ({ type: "FeatureCollection", features: [] })),
    getJson("/tiles/risk.json").catch(() => null),
    getJson("/api/v1/map").catch(() => ({})),
    getJson("/api/v1/layers")]);
  firstData.catch(() => {});  // read (and reported) in addLayers; signed out, never
  map.on("load", async () => {
    if (!(await sessionReady)) return;  // the sign-in form is up
    try {
      await addLayers();
    } catch (e) {
      openPanel(esc(e.message));
    }
    lastUpdate = new Date();
    map.on("moveend", () => followView().catch(() => {}));
    connectStream();
    loadAlerts().catch(() => {});
    setInterval(() => {
      loadAlerts().catch(() => {});
      refreshSoon(["parent_risk"]);  // comes from the parent on its own rhythm; unchanged tiles answer 304
    }, 15000);
    checkFeeds();
    setInterval(checkFeeds, 30000);
    renderStatus();
    document.body.dataset.ready = "true";
  });
  renderText();
})();
