// The one-map's time bar: the risk layer as it was at a moment (GET /api/v1/layers/risk?at=),
// each cell's explanation as of then, and a replay of an hour (an incident's first hour from its
// panel). Moved off "live", the live cells are hidden and the past ones drawn in their place;
// "live" brings the live layer back. Uses what onemap.js exposes on window.onemap.
(() => {
  "use strict";
  const TEXT = {
    zh: { live: "实时", back: "回看", replay: "回放 1 小时", stop: "停止", at: "时刻", cells: "网格",
          notThere: "该时刻此网格无风险", score: "风险分", factor: "因素", contribution: "贡献" },
    en: { live: "live", back: "look back", replay: "replay 1 h", stop: "stop", at: "at", cells: "cells",
          notThere: "the cell was not at risk then", score: "score", factor: "factor", contribution: "contribution" },
  };
  const HOURS_BACK = 48;  // how far the bar reaches
  const STEP_MS = 600;    // a replayed minute lasts this long
  const om = window.onemap;
  if (!om) return;
  const map = om.map;
  const t = (k) => TEXT[om.lang()][k] || k;
  let at = null;          // the moment shown (Date), null: live
  let playing = null;     // the replay's timer
  let loading = 0;

  const bar = document.createElement("div");
  bar.id = "timebar";
  bar.innerHTML = `<button type="button" id="time-live" class="active"></button>
    <input id="time-range" type="range" min="${-HOURS_BACK * 60}" max="0" step="1" value="0" aria-label="time">
    <span id="time-text" class="time-text"></span>
    <button type="button" id="time-replay"></button>`;
  document.getElementById("map").appendChild(bar);
  const range = bar.querySelector("#time-range");
  const text = bar.querySelector("#time-text");
  const liveButton = bar.querySelector("#time-live");
  const replayButton = bar.querySelector("#time-replay");

  function render() {
    liveButton.textContent = t("live");
    liveButton.classList.toggle("active", !at);
    replayButton.textContent = playing ? t("stop") : t("replay");
    text.textContent = at ? `${t("at")} ${at.toISOString().replace(".000Z", "Z")}` : t("back");
    bar.dataset.mode = at ? "past" : "live";
  }

  function ensureLayer() {
    if (map.getSource("risk-at")) return;
    map.addSource("risk-at", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    const before = map.getLayer("nearby-line") ? "nearby-line" : undefined;
    map.addLayer({ id: "risk-at-main", type: "fill", source: "risk-at",
                   paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.55, "fill-outline-color": "#ffffff" } }, before);
  }

  function setLive(visible) {
    for (const id of ["risk-main"]) {
      if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
    }
    if (map.getLayer("risk-at-main")) map.setLayoutProperty("risk-at-main", "visibility", visible ? "none" : "visible");
  }

  // Draws the layer as it was at `when` for the view.
  async function show(when) {
    ensureLayer();
    at = new Date(Math.floor(when.getTime() / 1000) * 1000);
    const minutes = Math.round((at.getTime() - Date.now()) / 60000);
    range.value = String(Math.max(-HOURS_BACK * 60, Math.min(0, minutes)));
    render();
    setLive(false);
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
    const asked = at.toISOString();
    ++loading;
    bar.dataset.loading = "true";
    try {
      const fc = await om.getJson(`/api/v1/layers/risk?at=${encodeURIComponent(asked)}&bbox=${bbox}&limit=50000`);
      if (at && at.toISOString() === asked) {
        map.getSource("risk-at").setData(fc);
        bar.dataset.cells = String(fc.numberReturned);
        bar.dataset.shown = asked;
      }
    } finally {
      if (--loading === 0) delete bar.dataset.loading;
    }
  }

  function live() {
    stop();
    at = null;
    range.value = "0";
    setLive(true);
    delete bar.dataset.shown;
    render();
  }

  function stop() {
    if (playing) clearTimeout(playing);
    playing = null;
    render();
  }

  // Plays an hour from `from`, a minute per step; each frame waits for the one before.
  async function replay(from) {
    stop();
    const start = from.getTime();
    let minute = 0;
    const frame = async () => {
      await show(new Date(start + minute * 60000)).catch(() => {});
      bar.dataset.minute = String(minute);
      if (++minute > 60 || !playing) {
        playing = null;
        render();
        return;
      }
      playing = setTimeout(frame, STEP_MS);
    };
    playing = setTimeout(frame, 0);
    render();
  }

  async function explain(token) {
    const cell = await om.getJson(`/api/v1/layers/risk/cells/${encodeURIComponent(token)}?at=${encodeURIComponent(at.toISOString())}`)
      .catch(() => null);
    const esc = om.esc;
    if (!cell) return om.openPanel(`<h3>${esc(token)}</h3><p>${esc(t("notThere"))}</p>`);
    const rows = cell.factors.map((f) => `<tr><td>${esc(f.name)}<div class="note">${esc(f.note)}</div></td>` +
      `<td class="num">${f.contribution.toFixed(1)}</td></tr>`).join("");
    om.openPanel(`<h3>${esc(cell.cell)} · ${esc(t("at"))} ${esc(at.toISOString())}</h3>
      <p><span class="level-badge" style="background:${esc(cell.colour)}">${esc(om.levelName(cell.level))}</span>
      ${esc(t("score"))} <b>${cell.score.toFixed(1)}</b></p>
      <table data-at="${esc(at.toISOString())}"><thead><tr><th>${esc(t("factor"))}</th><th class="num">${esc(t("contribution"))}</th></tr></thead>
      <tbody>${rows}</tbody></table>`);
  }

  let debounce = null;
  range.addEventListener("input", () => {
    stop();
    const minutes = Number(range.value);
    if (minutes >= 0) return live();
    clearTimeout(debounce);
    debounce = setTimeout(() => show(new Date(Date.now() + minutes * 60000)).catch(() => {}), 250);
  });
  liveButton.addEventListener("click", live);
  replayButton.addEventListener("click", () => {
    if (playing) return stop();
    replay(at || new Date(Date.now() - 3600000));
  });
  document.addEventListener("click", (e) => {
    const from = e.target.closest("[data-replay]");
    if (from) replay(new Date(from.dataset.replay));
  });
  map.on("moveend", () => { if (at && !playing) show(at).catch(() => {}); });
  map.on("click", "risk-at-main", (e) => {
    if (at && e.features.length) explain(e.features[0].properties.cell).catch(() => {});
  });
  document.getElementById("lang").addEventListener("click", () => setTimeout(render, 0));
  om.timeline = { show, live, replay, stop, at: () => at };
  render();
})();
