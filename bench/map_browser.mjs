// The browser half of `firehub bench map`: the one-map of a running hub in headless Chromium
// (Debian's chromium, driven by playwright-core from web/onemap/node_modules). Figures, written
// as one JSON object to <out.json>:
//   first_paint_ms      navigation to the province drawn (every tile of the view loaded);
//   pan_longest_task_ms the longest main-thread task while panning at province, city and street
//                       zoom (PerformanceObserver "longtask");
//   delta_p50_ms, delta_p95_ms, deltas_seen, deltas_missed
//                       a fire alarm pushed to the hub (100 buildings a second, each in its own
//                       cell) to the first frame drawn after the page applied the delta that
//                       turns its cell to the highest level.
// Usage: node map_browser.mjs <hub url> <targets.json> <out.json> <source dir> <admin key file>
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [base, targetsFile, out, sourceArg, keyFile] = process.argv.slice(2);
const source = path.resolve(sourceArg);
const { chromium } = createRequire(path.join(source, "web", "onemap", "package.json"))("playwright-core");
const targets = JSON.parse(fs.readFileSync(targetsFile, "utf8"));
const key = fs.readFileSync(keyFile, "utf8").trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (v, p) => (v.length ? [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(p * v.length))] : 0);
const figures = {};

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
                                        args: ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"] });
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.addInitScript(() => {
    window.benchLongTasks = [];
    new PerformanceObserver((list) => list.getEntries().forEach((e) => window.benchLongTasks.push(e.duration)))
      .observe({ type: "longtask", buffered: true });
  });
  const settled = () => page.evaluate(() => new Promise((resolve) => {
    const m = window.onemap.map;
    const check = () => (m.loaded() && m.areTilesLoaded() && !m.isMoving() ? resolve() : setTimeout(check, 20));
    check();
  }));

  // 1. First paint of the province.
  const t0 = Date.now();
  await page.goto(`${base}/`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 60000 });
  await settled();
  figures.first_paint_ms = Date.now() - t0;
  figures.first_paint_zoom = await page.evaluate(() => window.onemap.map.getZoom());

  // 2. Panning at province, city and street zoom.
  const centre = await page.evaluate(() => window.onemap.map.getCenter().toArray());
  await page.evaluate(() => { window.benchLongTasks.length = 0; });
  for (const zoom of [7, 10, 13, 15]) {
    await page.evaluate(([c, z]) => window.onemap.map.jumpTo({ center: c, zoom: z }), [centre, zoom]);
    await settled();
    for (let i = 0; i < 8; i++) {
      await page.evaluate((dx) => window.onemap.map.panBy([dx, 0], { duration: 300 }), i % 2 ? -500 : 500);
      await sleep(350);
    }
    await settled();
  }
  figures.pan_longest_task_ms = await page.evaluate(() => Math.max(0, ...window.benchLongTasks));
  figures.pan_long_tasks_over_200ms = await page.evaluate(() => window.benchLongTasks.filter((d) => d > 200).length);

  // 3. Delta-to-screen at 100 changed cells a second, on a city view at the grid's zoom.
  await page.evaluate(([c]) => window.onemap.map.jumpTo({ center: c, zoom: 12 }), [centre]);
  await settled();
  await page.evaluate(() => {
    window.benchShown = {};
    window.addEventListener("onemap:delta", (e) => {
      const cells = e.detail.features.filter((f) => f.properties.level_rank === 1).map((f) => f.id);
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const now = Date.now();
        for (const id of cells) window.benchShown[id] ??= now;
      }));
    });
  });
  const pushedAt = {};
  const seconds = 20, perSecond = 100;
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/x-ndjson" };
  let n = 0;
  const start = Date.now();
  for (let tick = 0; tick < seconds * 10 && n < targets.length; tick++) {
    while (Date.now() < start + tick * 100) await sleep(2);
    const lines = [];
    for (let k = 0; k < perSecond / 10 && n < targets.length; k++, n++) {
      const [building, token] = targets[n];
      lines.push(JSON.stringify({ event_id: `MAP-${n}`, device_address: "0011223344aa", building_id: building,
                                  info_type: "component_state", system_type: 1, system_address: 1, component_type: 40,
                                  component_address: n % 250, state_flags: 3, description: "火警",
                                  time: new Date().toISOString().replace(/\.\d+Z$/, "Z") }));
      pushedAt[token] = Date.now();
    }
    const r = await fetch(`${base}/api/v1/feeds/alarms/records`, { method: "POST", headers, body: lines.join("\n") + "\n" });
    if (!r.ok) throw new Error(`push: HTTP ${r.status} ${await r.text()}`);
  }
  await sleep(5000);
  const shown = await page.evaluate(() => window.benchShown);
  const latencies = Object.entries(pushedAt).filter(([t]) => shown[t]).map(([t, at]) => shown[t] - at);
  figures.deltas_pushed = Object.keys(pushedAt).length;
  figures.deltas_seen = latencies.length;
  figures.delta_p50_ms = pct(latencies, 0.5);
  figures.delta_p95_ms = pct(latencies, 0.95);
  fs.writeFileSync(out, JSON.stringify(figures));
} finally {
  await browser.close();
}
