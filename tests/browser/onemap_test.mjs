// The one-map in a real browser (Debian's chromium, headless, driven by playwright-core): a hub
// with a small fixed dataset; the page loads its layers as vector tiles, the risk layer renders
// every cell in its level's colour, the province view's coarser cells count them all, a layer
// toggles off and on, a click on a cell explains it, a fire alarm pushed to the hub turns that
// cell red through the event stream without a reload, the language switches, and after the hub
// restarts the page reconnects by itself. GIS clients read the same layers through
// OGC API - Features: paging by hand, and GDAL's OAPIF driver (ogrinfo).
// Usage: node onemap_test.mjs <firehub binary> <scratch dir> <source dir>
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";

const [binary, scratch, source] = process.argv.slice(2);
// playwright-core is installed with the one-map's packages (web/onemap/node_modules).
const { chromium } = createRequire(path.join(source, "web", "onemap", "package.json"))("playwright-core");
const dataDir = path.join(scratch, `onemap-test-${process.pid}`);
fs.rmSync(dataDir, { recursive: true, force: true });
fs.mkdirSync(dataDir, { recursive: true });
const fixture = (connector, file) => fs.readFileSync(path.join(source, "connectors", connector, "tests", "fixtures", file));

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if (await fn()) return true; } catch (e) { /* not yet */ }
    await sleep(200);
  }
  check(false, `${what} (timed out after ${ms} ms)`);
  return false;
}

let hub = null;
let base = null;
// An error thrown outside the try below (e.g. in a route handler) ends the process without its
// finally: the hub must not outlive the test.
process.on("exit", () => {
  if (hub && hub.exitCode === null) hub.kill("SIGKILL");
});
async function startHub(listen, extra = []) {
  fs.rmSync(path.join(dataDir, "http.address"), { force: true });
  hub = spawn(binary, ["serve", "--init", "--data-dir", dataDir, "--http", listen, ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  hub.stderr.on("data", (d) => fs.appendFileSync(path.join(dataDir, "hub.log"), d));
  await until("hub writes its address", () => fs.existsSync(path.join(dataDir, "http.address")));
  base = `http://${fs.readFileSync(path.join(dataDir, "http.address"), "utf8").trim()}`;
  await until("hub is healthy", async () => (await fetch(`${base}/healthz`)).ok);
}
async function stopHub() {
  const exited = new Promise((r) => hub.once("exit", r));
  hub.kill("SIGTERM");
  await exited;
}
async function api(method, p, body, type) {
  // The admin key the hub wrote on first start; the page itself reads anonymously from loopback.
  const key = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim();
  const headers = { authorization: `Bearer ${key}` };
  if (type) headers["content-type"] = type;
  const r = await fetch(`${base}${p}`, { method, body, headers });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

let browser = null;
try {
  await startHub("127.0.0.1:0", ["--set", `map.outlines=${path.join(source, "web", "onemap", "districts.geojson")}`]);
  const feeds = [
    ["bld", "housing-bureau", "firehub.connector.building", "buildings.geojson", "application/geo+json", "building"],
    ["fs", "fire-service", "firehub.connector.station", "stations.csv", "text/csv", "station"],
    ["wat", "water-bureau", "firehub.connector.water", "sources.csv", "text/csv", "water"],
  ];
  for (const [id, agency, connector, file, type, dir] of feeds) {
    await api("POST", "/api/v1/feeds", JSON.stringify({ id, agency, connector }), "application/json");
    await api("POST", `/api/v1/feeds/${id}/records`, fixture(dir, file), type);
  }
  await api("POST", "/api/v1/feeds", JSON.stringify({ id: "iot", agency: "fire-iot", connector: "firehub.connector.alarm" }), "application/json");
  let layer = null;
  await until("the risk layer has the fixture's cells", async () => {
    layer = await api("GET", "/api/v1/layers/risk?limit=1000");
    return layer.numberMatched >= 3 && layer.features.every((f) => f.properties.response_s >= 0);
  });
  const legend = (await api("GET", "/api/v1/layers")).layers.find((l) => l.name === "risk").legend;
  const colourOf = Object.fromEntries(legend.map((e) => [e.key, e.colour]));

  // OGC API - Features: landing, conformance, collections, paging with next links, one feature.
  const landing = await api("GET", "/ogc");
  check(landing.links.some((l) => l.rel === "conformance") && landing.links.some((l) => l.rel === "data"), "OGC landing page links");
  const conformance = await api("GET", "/ogc/conformance");
  check(conformance.conformsTo.includes("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"), "conforms to Core + GeoJSON");
  const collections = (await api("GET", "/ogc/collections")).collections.map((c) => c.id);
  check(collections.includes("risk") && collections.includes("entities-building"), `collections per layer and domain (${collections.length})`);
  let next = "/ogc/collections/risk/items?limit=2";
  const paged = [];
  for (let i = 0; next && i < 20; i++) {
    const pageOf = await api("GET", next.replace(base, ""));
    check(pageOf.numberMatched === layer.numberMatched && pageOf.numberReturned === pageOf.features.length,
          `page ${i}: numberMatched ${pageOf.numberMatched}, numberReturned ${pageOf.numberReturned}`);
    paged.push(...pageOf.features.map((f) => f.id));
    next = pageOf.links.find((l) => l.rel === "next")?.href;
  }
  check(paged.length === layer.numberMatched && new Set(paged).size === paged.length, "next links page through every cell once");
  const one = await api("GET", `/ogc/collections/risk/items/${paged[0]}`);
  check(one.type === "Feature" && one.id === paged[0] && one.geometry.type === "Polygon", "one feature by id");
  const ring = one.geometry.coordinates[0];
  check(ring.every(([lon, lat]) => lon > 120 && lon < 125 && lat > 40 && lat < 43), "coordinates in lon/lat order (RFC 7946)");
  check((await fetch(`${base}/ogc/collections/risk/items?limit=0`)).status === 400, "bad limit is a 400");
  check((await fetch(`${base}/ogc/collections/nope/items`)).status === 404, "unknown collection is a 404");
  const ogr = execFileSync("ogrinfo", ["-ro", "-q", `OAPIF:${base}/ogc`, "risk"], { encoding: "utf8", timeout: 60000 });
  const ogrCount = (ogr.match(/OGRFeature\(risk\)/g) || []).length;
  check(ogrCount === layer.numberMatched, `GDAL's OAPIF driver reads ${ogrCount} risk features`);

  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
                                    args: ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"] });
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));
  await page.goto(`${base}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 60000 });
  // Fit the fixture's cells and wait for the map to settle.
  const bounds = layer.features.flatMap((f) => f.geometry.coordinates[0]);
  await page.evaluate((pts) => new Promise((resolve) => {
    const { map } = window.onemap;
    const b = pts.reduce((acc, p) => acc.extend(p), new maplibregl.LngLatBounds(pts[0], pts[0]));
    map.once("idle", resolve);
    map.fitBounds(b, { padding: 200, animate: false });
  }), bounds);

  // Cells as the map draws them, once each (a cell near a tile's edge is in two tiles): the
  // level and colour of a delta (feature-state) over the tile's own. A summary cell (below the
  // grid's zoom) has no token: it is known by its first corner.
  const rendered = () => page.evaluate(() => {
    const seen = {};
    for (const f of window.onemap.map.queryRenderedFeatures({ layers: ["risk-main"] })) {
      const key = f.properties.cell ?? `summary ${f.geometry.coordinates[0][0].map((v) => v.toFixed(4)).join(",")}`;
      seen[key] = { level: f.state.level ?? f.properties.level, colour: f.state.colour ?? f.properties.colour,
                                  cells: f.properties.cells };
    }
    return seen;
  });
  // Tiles are read by the map's workers: every request the page made, as the browser saw it.
  const tileReads = async (name) => requested.filter((u) => u.includes(`/tiles/${name}/`));
  let cells = await rendered();
  check(Object.keys(cells).length === layer.numberMatched,
        `risk layer rendered ${Object.keys(cells).length} cells, the API has ${layer.numberMatched}`);
  for (const f of layer.features) {
    const c = cells[f.id];
    check(c && c.level === f.properties.level && c.colour === colourOf[f.properties.level],
          `cell ${f.id} drawn at level ${f.properties.level} in ${colourOf[f.properties.level]}`);
  }
  check((await tileReads("risk")).length > 0 && (await tileReads("risk")).every((u) => /\/tiles\/risk\/\d+\/\d+\/\d+\.mvt$/.test(u)),
        "the risk layer comes as vector tiles");
  check(errors.length === 0, `no page errors (${errors.join("; ")})`);

  // Toggle the risk layer off and on.
  await page.uncheck("#toggle-risk");
  // Hidden from the next frame on (the map applies the change when it next renders).
  if (await until("risk layer hidden by its toggle", async () => Object.keys(await rendered()).length === 0, 5000)) {
    check(true, "risk layer hidden by its toggle");
  }
  await page.check("#toggle-risk");
  await until("risk layer shown again", async () => Object.keys(await rendered()).length === layer.numberMatched, 5000);

  // A layer hidden at start is not read until shown: the hydrants' tiles come on their toggle.
  const hydrants = await api("GET", "/api/v1/layers/hydrants");
  const drawnHydrants = () => page.evaluate(() => window.onemap.map.queryRenderedFeatures({ layers: ["hydrants-main"] }).length);
  check(hydrants.numberMatched > 0 && (await drawnHydrants()) === 0 && (await tileReads("hydrants")).length === 0,
        `hydrants hidden and not read at start (${hydrants.numberMatched} in the API)`);
  await page.check("#toggle-hydrants");
  await until("hydrants drawn once shown", async () => (await drawnHydrants()) > 0, 5000);
  check((await tileReads("hydrants")).length > 0, "hydrants read as tiles, when shown");
  await page.uncheck("#toggle-hydrants");

  // The province view: the tiles draw coarser cells, each summarising the grid cells under it;
  // together they count every cell of the layer.
  const home = await page.evaluate(() => ({ center: window.onemap.map.getCenter().toArray(), zoom: window.onemap.map.getZoom() }));
  await page.evaluate((h) => new Promise((r) => { window.onemap.map.once("idle", r); window.onemap.map.jumpTo({ center: h.center, zoom: 6 }); }), home);
  await until("the province view counts every cell", async () => {
    const shown = Object.values(await rendered());
    return shown.length > 0 && shown.every((c) => c.cells > 0) && shown.reduce((n, c) => n + c.cells, 0) === layer.numberMatched;
  }, 10000);
  await page.screenshot({ path: path.join(scratch, "onemap-province.png") });
  await page.evaluate((h) => new Promise((r) => { window.onemap.map.once("idle", r); window.onemap.map.jumpTo(h); }), home);
  await until("grid cells back at home", async () => Object.keys(await rendered()).length === layer.numberMatched, 5000);

  // The live overlays are read by area: far away the fire weather stations are read for the new
  // area, and an area holding more than the page reads says so (the hub's answer is rewritten
  // to claim more matches than it returned); the note goes once an area fits again.
  await page.check("#toggle-weather_stations");
  const moveAway = async () => {
    await page.evaluate(() => window.onemap.map.jumpTo({ center: [100.0, 30.0] }));
    await until("read far away", () => page.evaluate(() => window.onemap.overlayArea()[0] < 100), 5000);
    await page.evaluate((h) => window.onemap.map.jumpTo(h), home);
    await until("read at home", () => page.evaluate(() => window.onemap.overlayArea()[0] > 110), 5000);
  };
  const alarmReads = () => page.evaluate(() => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/api/v1/layers/weather_stations?")).map((e) => e.name));
  await page.route("**/api/v1/layers/weather_stations?*", async (route) => {
    const answer = await route.fetch();
    const body = await answer.json();
    body.numberMatched = 99999;
    await route.fulfill({ response: answer, json: body });
  });
  await moveAway();
  if (await until("note that the view holds more fire weather stations than shown", async () =>
    !(await page.isHidden("#partial")) && (await page.textContent("#partial")).includes("99999"), 5000)) {
    check(true, `a cut-short overlay says so: "${await page.textContent("#partial")}"`);
  }
  await page.unrouteAll({ behavior: "wait" });  // lets a request already in the handler finish there
  await moveAway();
  if (await until("note gone once the area fits", () => page.isHidden("#partial"), 5000)) {
    check(true, "the note goes once the area fits");
  }
  check((await alarmReads()).length >= 4 && (await alarmReads()).every((u) => /[?&]bbox=[-0-9.]+,[-0-9.]+,[-0-9.]+,[-0-9.]+/.test(u)),
        `fire weather read by area on the moves (${(await alarmReads()).length} reads)`);
  await page.uncheck("#toggle-weather_stations");

  // Click the shopping centre's cell: the panel explains it factor by factor.
  const target = layer.features.find((f) => f.properties.buildings > 0) || layer.features[0];
  const centre = async () => page.evaluate((coords) => {
    const ring = coords.slice(0, 4);
    const lon = ring.reduce((s, p) => s + p[0], 0) / 4, lat = ring.reduce((s, p) => s + p[1], 0) / 4;
    const p = window.onemap.map.project([lon, lat]);
    const box = document.getElementById("map").getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  }, target.geometry.coordinates[0]);
  // Points drawn over the cell would take the click: hide them first.
  for (const name of ["alarms", "stations"]) await page.uncheck(`#toggle-${name}`);
  const at = await centre();
  await page.mouse.click(at.x, at.y);
  await page.waitForSelector("#panel:not([hidden]) tr[data-factor]", { timeout: 10000 });
  const factors = await page.$$eval("#panel tr[data-factor]", (rows) => rows.map((r) => r.dataset.factor));
  check(["building", "alarm", "weather", "water", "response", "medical", "public_safety"].every((f) => factors.includes(f)),
        `panel lists every factor (${factors.join(", ")})`);
  const panelText = await page.textContent("#panel");
  check(panelText.includes(target.id) && panelText.includes("建筑"), "panel names the cell and its factors in Chinese");
  await page.screenshot({ path: path.join(scratch, "onemap-before-alarm.png") });

  // A fire alarm in that building: the cell turns to level I through the stream, no reload.
  await page.evaluate(() => { window.notReloaded = true; });
  const building = (await api("GET", `/api/v1/layers/risk/cells/${target.id}`)).factors
    .find((f) => f.name === "building").sources[0];
  const buildingId = (await api("GET", `/api/v1/records/${encodeURIComponent(building)}`)).entity_id;
  const alarm = { event_id: "BROWSER-1", device_address: "0011223344aa", building_id: buildingId, info_type: "component_state",
                  system_type: 1, system_address: 1, component_type: 40, component_address: 3, state_flags: 3,
                  description: "3层走廊感烟探测器火警", time: new Date().toISOString().replace(/\.\d+Z$/, "Z") };
  // The alarm arrives while the page reads the risk tiles again after a pan, and the tiles'
  // answers (taken before the alarm) are held back until the delta has been drawn: a tile older
  // than the delta must not paint the cell back to its old level.
  let hold = false, answered = false, release = null;
  const released = new Promise((r) => { release = r; });
  await page.route("**/tiles/risk/**", async (route) => {
    const answer = await route.fetch();
    const body = await answer.body();
    if (hold) {
      answered = true;
      await released;
    }
    await route.fulfill({ response: answer, body });
  });
  await page.evaluate(() => window.onemap.map.jumpTo({ center: [100.0, 30.0] }));
  await until("read far away", () => page.evaluate(() => window.onemap.overlayArea()[0] < 100), 5000);
  await page.evaluate((h) => new Promise((r) => { window.onemap.map.once("idle", r); window.onemap.map.jumpTo(h); }), home);
  // The map kept the home tiles: they are read again, as after a reconnect.
  hold = true;
  await page.evaluate(() => window.onemap.map.refreshTiles("risk"));
  await until("the home tiles answered (and held)", () => answered, 5000);
  const beforeAlarm = new Date(Date.now() - 1500).toISOString();  // the time bar looks back here
  const pushed = await api("POST", "/api/v1/feeds/iot/records", JSON.stringify(alarm) + "\n", "application/x-ndjson");
  check(pushed.accepted === 1, `alarm accepted (${JSON.stringify(pushed)})`);
  await until("the alarm's delta reached the page during the read", () => page.evaluate((id) =>
    window.onemap.riskCells.get(id)?.properties.level, target.id).then((level) => level === legend[0].key), 5000);
  release();
  await sleep(300);
  await page.unrouteAll({ behavior: "wait" });  // lets a request already in the handler finish there
  await until("the alarmed cell turns red on the page", async () => {
    const c = (await rendered())[target.id];
    return c && c.level === legend[0].key && c.colour === legend[0].colour;
  }, 5000);
  check((await page.evaluate((id) => window.onemap.riskCells.get(id).properties.level, target.id)) === legend[0].key,
        "the alarm's red cell survives tiles read before it");
  check(await page.evaluate(() => window.notReloaded === true), "updated without a reload");
  check((await page.textContent("#updated")).length > 0, "header shows the time of the last update");

  // The time bar: the risk layer as it was before the alarm (the cell not red), then live again.
  await page.evaluate((w) => window.onemap.timeline.show(new Date(w)), beforeAlarm);
  const pastCell = async () => page.evaluate((id) => {
    const f = window.onemap.map.queryRenderedFeatures({ layers: ["risk-at-main"] }).find((x) => x.properties.cell === id);
    return f ? f.properties.level : null;
  }, target.id);
  if (await until("the time bar draws the layer before the alarm", async () => {
    const level = await pastCell();
    return level && level !== legend[0].key;
  }, 10000)) {
    check(await page.evaluate(() => document.getElementById("timebar").dataset.mode === "past" &&
                              window.onemap.map.getLayoutProperty("risk-main", "visibility") === "none"),
          `the time bar shows the cell at level ${await pastCell()} before the alarm, the live layer hidden`);
  }
  await page.click("#time-live");
  check(await page.evaluate(() => document.getElementById("timebar").dataset.mode === "live" &&
                            window.onemap.map.getLayoutProperty("risk-main", "visibility") === "visible"),
        "back to live: the live layer again");

  // The alert list: the fire alarm and the risk warning it raised, newest first; a click flies
  // to the alarm and rings it; the local viewer gets no acknowledge button; an operator's
  // acknowledgement shows for every viewer.
  await until("the alarm in the alert list", () => page.evaluate(() =>
    window.onemap.alerts().alerts.some((a) => a.kind === "fire_alarm")), 20000);
  const alertList = await page.evaluate(() => window.onemap.alerts().alerts);
  const listed = alertList.find((a) => a.kind === "fire_alarm");
  check(listed.title === buildingId && alertList.some((a) => a.kind === "cap_drafted") &&
        alertList.every((a, i) => i === 0 || alertList[i - 1].at >= a.at),
        `the fire alarm and the warning it raised, newest first (${alertList.map((a) => a.kind).join(", ")})`);
  await page.click(`#alerts .alert[data-id="${listed.id}"]`);
  await until("the map flies to the alarm", () => page.evaluate((p) => {
    const c = window.onemap.map.getCenter();
    return !window.onemap.map.isMoving() && Math.abs(c.lng - p[0]) < 1e-4 && Math.abs(c.lat - p[1]) < 1e-4;
  }, listed.point), 10000);
  if (await until("the alarm is ringed on the map", () => page.evaluate(() =>
    window.onemap.map.queryRenderedFeatures({ layers: ["focus-ring"] }).length === 1), 5000)) {
    check(true, "the alarm is ringed on the map");
  }
  // Incident focus: the panel lists what is around the alarm, as the API has it.
  const near = await api("GET", `/api/v1/nearby?lon=${listed.point[0]}&lat=${listed.point[1]}&radius_m=1000`);
  await until("the alarm's surroundings in the panel", () => page.evaluate((n) =>
    document.querySelectorAll('#panel ul[data-nearby="stations"] li[data-point]').length === n.stations.length &&
    document.querySelectorAll('#panel ul[data-nearby="hydrants"] li[data-point]').length === n.hydrants.length, near), 10000);
  check(near.stations.length > 0 && near.stations[0].travel_s > 0, `nearest stations with travel times (${near.stations.map((s) => `${s.id} ${s.travel_s} s`).join(", ")})`);
  await page.screenshot({ path: path.join(scratch, "onemap-alert-focus.png") });
  check((await page.$$("#alerts .ack")).length === 0, "the local viewer has no acknowledge button");
  const acked = await api("POST", `/api/v1/alerts/${encodeURIComponent(listed.id)}/ack`);
  check(acked.acknowledged && acked.acknowledged.by.length > 0, "an admin acknowledges the alarm");
  await page.evaluate(() => window.onemap.map.fire("moveend"));
  await until("the acknowledgement shows on the page", () => page.evaluate(async (id) => {
    const r = await fetch("/api/v1/alerts");
    return (await r.json()).alerts.find((a) => a.id === id)?.acknowledged !== undefined;
  }, listed.id), 5000);
  await page.screenshot({ path: path.join(scratch, "onemap-alarm.png") });

  // Districts: a district's filter fits the map to it; the statistics and ranking on the page
  // are the API's.
  const stats = await api("GET", "/api/v1/stats/districts");
  check(stats.districts.length >= 2 && stats.districts.reduce((n, d) => n + Object.values(d.cells_by_level).reduce((a, b) => a + b, 0), 0) === layer.numberMatched,
        `district statistics count every cell (${stats.districts.length} districts)`);
  const busiest = stats.districts[0];
  await page.selectOption("#district", String(busiest.id));
  await page.waitForSelector(`#panel tr[data-district="${busiest.id}"].selected`, { timeout: 10000 });
  const shownStats = await page.$$eval("#panel tr[data-district]", (rows) => rows.map((r) => ({
    id: r.dataset.district, high: r.querySelector("[data-stat=high]").textContent, alarms: r.querySelector("[data-stat=alarms]").textContent,
    hydrants: r.querySelector("[data-stat=hydrants]").textContent, devices: r.querySelector("[data-stat=devices]").textContent })));
  const fromApi = stats.districts.map((d) => ({ id: String(d.id),
    high: String((d.cells_by_level[legend[0].key] || 0) + (d.cells_by_level[legend[1].key] || 0)),
    alarms: `${d.open_fire_alarms}/${d.open_faults}`, hydrants: `${(100 * d.hydrant_intact_rate).toFixed(1)}%`,
    devices: `${d.iot_devices_online}/${d.iot_devices}` }));
  check(JSON.stringify(shownStats) === JSON.stringify(fromApi), `the page's district table is the API's, in rank order`);
  await page.screenshot({ path: path.join(scratch, "onemap-districts.png") });
  await page.selectOption("#district", "");
  await page.evaluate((h) => new Promise((r) => { window.onemap.map.once("idle", r); window.onemap.map.jumpTo(h); }), home);

  // Search: a building by name; the result flies to it.
  await page.fill("#search", "沈阳故宫");
  await page.waitForSelector("#search-results:not([hidden]) .search-result[data-record]", { timeout: 10000 });
  const hit = await api("GET", `/api/v1/search?q=${encodeURIComponent("沈阳故宫")}`);
  check(hit.results.length >= 1 && hit.results[0].entity_id === "SY-B-000003", `search finds the building (${JSON.stringify(hit.results[0])})`);
  await page.click("#search-results .search-result[data-record]");
  await until("the map flies to the search result", () => page.evaluate((p) => {
    const c = window.onemap.map.getCenter();
    return !window.onemap.map.isMoving() && Math.abs(c.lng - p[0]) < 1e-4 && Math.abs(c.lat - p[1]) < 1e-4;
  }, hit.results[0].point), 10000);
  check((await api("GET", `/api/v1/search?q=${encodeURIComponent(hit.results[0].record_id)}`)).results[0]?.matched === "record_id",
        "search finds a record by its id");
  await page.evaluate((h) => new Promise((r) => { window.onemap.map.once("idle", r); window.onemap.map.jumpTo(h); }), home);

  // Export: the view as PNG (title, legend, time and sources around the map) and as PDF.
  const [png] = await Promise.all([page.waitForEvent("download"), page.click("#export-png")]);
  const pngBytes = fs.readFileSync(await png.path());
  const pngWidth = pngBytes.readUInt32BE(16), pngHeight = pngBytes.readUInt32BE(20);
  const mapSize = await page.evaluate(() => [window.onemap.map.getCanvas().width, window.onemap.map.getCanvas().height]);
  check(pngBytes.subarray(1, 4).toString() === "PNG" && pngWidth === mapSize[0] && pngHeight > mapSize[1],
        `export PNG ${pngWidth}x${pngHeight} (the map ${mapSize.join("x")} with a title and legend band)`);
  fs.copyFileSync(await png.path(), path.join(scratch, "onemap-export.png"));
  const [pdf] = await Promise.all([page.waitForEvent("download"), page.click("#export-pdf")]);
  const pdfBytes = fs.readFileSync(await pdf.path());
  check(pdfBytes.subarray(0, 5).toString() === "%PDF-" && pdfBytes.length > 10000 && pdf.suggestedFilename().endsWith(".pdf"),
        `export PDF (${pdfBytes.length} bytes)`);

  // Data age per layer, from its domains' feeds.
  await until("data age beside the layers", () => page.evaluate(() =>
    document.querySelector('#layers [data-age-layer="hydrants"]')?.textContent.includes("数据更新于")), 35000);

  // English.
  await page.click("#lang");
  check((await page.textContent("header h1")) === "firehub one-map", "language switches to English");
  check((await page.textContent("#sidebar")).includes("Fire risk"), "legend in English");

  // A tablet: the map keeps most of the screen, the legend stays readable.
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.waitForTimeout(500);
  const sizes = await page.evaluate(() => ({ map: document.getElementById("map").getBoundingClientRect().width,
                                             side: document.getElementById("sidebar").getBoundingClientRect().width }));
  check(sizes.map >= 700 && sizes.side > 0, `tablet layout: map ${sizes.map}px beside a ${sizes.side}px legend`);
  await page.screenshot({ path: path.join(scratch, "onemap-tablet.png") });
  await page.setViewportSize({ width: 1920, height: 1080 });

  // The hub restarts: the page's stream reconnects by itself and the cell is still red.
  const port = new URL(base).port;
  await stopHub();
  await until("page notices the hub is gone", async () => (await page.getAttribute("#status", "data-state")) !== "live", 15000);
  await startHub(`127.0.0.1:${port}`);
  await until("page reconnects after the restart", async () => (await page.getAttribute("#status", "data-state")) === "live", 30000);
  if (await until("cell still at level I after the restart", async () => (await rendered())[target.id]?.level === legend[0].key, 10000)) {
    check(true, "cell still at level I after the restart (tiles read again)");
  }
  await page.screenshot({ path: path.join(scratch, "onemap-after-restart.png") });

  // Sign-in from a workstation: the hub again without the anonymous loopback viewer.
  await stopHub();
  // An intranet basemap that is down (nothing listens on port 9) and a first view of its own.
  await startHub(`127.0.0.1:${port}`, ["--set", "auth.anonymous_loopback=none", "--set", "map.basemap=http://127.0.0.1:9/{z}/{x}/{y}.png",
                                       "--set", "map.basemap_attribution=测绘局", "--set", "map.initial_view=123.43,41.80,12"]);
  const officer = await api("POST", "/api/v1/users", JSON.stringify({ name: "duty.officer", password: "correct horse battery", role: "viewer" }), "application/json");
  check(officer.name === "duty.officer" && officer.role === "viewer", "an admin makes a viewer user");
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const desk = await context.newPage();
  desk.on("pageerror", (e) => errors.push(e.message));
  await desk.goto(`${base}/`);
  await desk.waitForSelector("#signin:not([hidden])", { timeout: 20000 });
  check(!(await desk.$("body[data-ready=true]")), "without a session the page asks to sign in and shows no map");
  await desk.screenshot({ path: path.join(scratch, "onemap-signin.png") });
  await desk.click("#signin .tabs button[data-mode=key]");
  await desk.fill("#signin-key", `fh_000000000000_${"0".repeat(64)}`);
  await desk.click("#signin-submit");
  await until("a wrong key is refused", async () => (await desk.textContent("#signin-error")).includes("unknown API key"), 5000);
  await desk.click("#signin .tabs button[data-mode=user]");
  await desk.fill("#signin-user", "duty.officer");
  await desk.fill("#signin-password", "not the password");
  await desk.click("#signin-submit");
  await until("a wrong password is refused", async () => (await desk.textContent("#signin-error")).includes("wrong user name or password"), 10000);
  await desk.fill("#signin-password", "correct horse battery");
  await Promise.all([desk.waitForNavigation(), desk.click("#signin-submit")]);
  await desk.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  check((await desk.textContent("#who")).includes("viewer"), `signed in as a viewer: "${await desk.textContent("#who")}"`);
  const opened = await desk.evaluate(() => ({ c: window.onemap.map.getCenter().toArray(), z: window.onemap.map.getZoom(),
                                              basemap: !!window.onemap.map.getLayer("basemap") }));
  check(Math.abs(opened.c[0] - 123.43) < 1e-6 && Math.abs(opened.c[1] - 41.8) < 1e-6 && opened.z === 12 && opened.basemap,
        `opens at map.initial_view with the basemap layer (${JSON.stringify(opened)})`);
  check(errors.length === 0, `an unreachable basemap is no page error (${errors.join("; ")})`);
  const jar = (await context.cookies()).find((c) => c.name === "fh_session");
  check(jar && jar.httpOnly && jar.sameSite === "Strict" && jar.expires > Date.now() / 1000,
        "the session cookie is HttpOnly, SameSite=Strict, with an expiry");
  check(!(await desk.evaluate(() => document.cookie.includes("fh_session"))), "the page's scripts cannot read it");
  const viewerWrite = await desk.evaluate(() => window.onemap.write("POST", "/api/v1/warnings/none/issue").then(() => "allowed", (e) => e.message));
  check(/operators/.test(viewerWrite), `a viewer cannot issue a warning (${viewerWrite})`);
  const viewerAck = await desk.evaluate(() => window.onemap.write("POST", `/api/v1/alerts/${encodeURIComponent(window.onemap.alerts().alerts[0]?.id || "rec:x")}/ack`).then(() => "allowed", (e) => e.message));
  check(/operators/.test(viewerAck) && (await desk.$$("#alerts .ack")).length === 0, `a viewer cannot acknowledge (${viewerAck})`);
  const noToken = await desk.evaluate(async () => (await fetch("/api/v1/warnings/none/issue", { method: "POST" })).status);
  check(noToken === 403, `a write with the cookie but without the CSRF token is refused (${noToken})`);
  await Promise.all([desk.waitForNavigation(), desk.click("#signout")]);
  await desk.waitForSelector("#signin:not([hidden])", { timeout: 20000 });
  const replayed = await fetch(`${base}/api/v1/layers`, { headers: { cookie: `fh_session=${jar.value}` } });
  check(replayed.status === 401, `after sign-out the old cookie is refused (${replayed.status})`);
  await context.close();

  // A vector basemap: a MapLibre style from another server (here one whose source is the hub's
  // own risk tiles, drawn as grey outlines) goes under the hub's layers.
  // It answers late, after the page has added its own layers (as a slow map service would).
  const styleServer = http.createServer(async (req, res) => {
    await sleep(1500);
    res.writeHead(200, { "content-type": "application/json", "access-control-allow-origin": "*" });
    res.end(JSON.stringify({ version: 8, sources: { grid: { type: "vector", maxzoom: 16, tiles: [`${base}/tiles/risk/{z}/{x}/{y}.mvt`] } },
                             layers: [{ id: "land", type: "background", paint: { "background-color": "#efe9dc" } },
                                      { id: "grid", type: "line", source: "grid", "source-layer": "risk", paint: { "line-color": "#555555", "line-width": 1 } }] }));
  });
  await new Promise((resolve) => styleServer.listen(0, "127.0.0.1", resolve));
  await stopHub();
  await startHub(`127.0.0.1:${port}`, ["--set", `map.basemap=http://127.0.0.1:${styleServer.address().port}/style.json`,
                                       "--set", "map.initial_view=123.43,41.80,12"]);
  const styled = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  styled.on("pageerror", (e) => errors.push(e.message));
  await styled.goto(`${base}/`);
  await styled.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  const drawn = await until("the style's layers are drawn", () => styled.evaluate(() => {
    const m = window.onemap.map;
    return m.getLayer("basemap:grid") && m.querySourceFeatures("basemap:grid", { sourceLayer: "risk" }).length > 0;
  }), 30000);
  if (drawn) {
    const order = await styled.evaluate(() => window.onemap.map.getStyle().layers.map((l) => l.id));
    const lowest = order.findIndex((id) => id !== "background" && !id.startsWith("basemap:"));
    check(order.indexOf("basemap:land") > 0 && order.indexOf("basemap:grid") < lowest && lowest <= order.indexOf("risk-main"),
          `a vector basemap style is drawn under every layer of the hub's (${order.slice(0, 6).join(", ")}, ...)`);
  }
  await styled.screenshot({ path: path.join(scratch, "onemap-vector-basemap.png") });
  check(errors.length === 0, `no page errors with a vector basemap (${errors.join("; ")})`);
  styleServer.close();
} catch (e) {
  check(false, `unexpected: ${e.stack || e}`);
} finally {
  if (browser) await browser.close();
  if (hub && hub.exitCode === null) await stopHub();
}
if (failures) {
  console.log(`${failures} check(s) failed; hub log: ${path.join(dataDir, "hub.log")}`);
  process.exit(1);
}
fs.rmSync(dataDir, { recursive: true, force: true });
console.log("one-map browser test passed");
