// Runs the README's shell blocks against a demo hub, so the README cannot drift from the hub.
//
// Every ```sh block runs (```shell blocks are shown, not run), in order, in one bash with
// `set -eo pipefail`, from a scratch folder laid out like the source tree (build/release,
// tests, connectors, ops linked in; var/firehub is the demo's data dir), with the demo on a free
// loopback port in place of 127.0.0.1:8080. A command that fails fails the test; so does an HTTP
// error answer to curl (curl runs with --fail-with-body, except a curl that prints its own
// status with -w, and a stream read ended by its own --max-time). A documented answer,
// `#=> TEXT` at the end of a command or on the line after it, must appear in that block's
// output, after the answers documented before it.
//
// Usage: node readme_tour.mjs <firehub binary> <source dir> <build dir>
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const [binary, sourceDir, buildDir] = process.argv.slice(2);
if (!binary || !sourceDir || !buildDir) {
  console.error("usage: node readme_tour.mjs <firehub binary> <source dir> <build dir>");
  process.exit(2);
}

// The blocks to run, each with its documented answers.
const readme = fs.readFileSync(path.join(sourceDir, "README.md"), "utf8");
const blocks = [];
{
  const lines = readme.split("\n");
  let current = null;
  lines.forEach((line, i) => {
    if (current === null && line === "```sh") {
      current = { start: i + 2, lines: [] };
    } else if (current !== null && line === "```") {
      blocks.push(current);
      current = null;
    } else if (current !== null) {
      current.lines.push(line);
    }
  });
}
if (blocks.length === 0) {
  console.error("README.md has no ```sh block");
  process.exit(1);
}
for (const b of blocks) {
  b.expect = [];
  b.lines.forEach((line, k) => {
    const m = line.match(/#=> (.*)$/);
    if (m) b.expect.push({ text: m[1].trim(), line: b.start + k });
  });
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const port = await freePort();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "firehub-readme-"));
fs.mkdirSync(path.join(work, "build"));
fs.symlinkSync(path.resolve(buildDir), path.join(work, "build", "release"));
for (const d of ["tests", "connectors", "ops", "docs", "schemas"]) {
  fs.symlinkSync(path.join(path.resolve(sourceDir), d), path.join(work, d));
}
const dataDir = path.join(work, "var", "firehub");
fs.mkdirSync(path.dirname(dataDir), { recursive: true });

const hubLog = fs.openSync(path.join(work, "hub.log"), "w");
const hub = spawn(
  binary,
  ["demo", "--config", path.join(sourceDir, "ops/config/firehub.properties"), "--data-dir", dataDir,
   "--http", `127.0.0.1:${port}`, "--init", "--buildings", "3000", "--water-sources", "400",
   "--alarm-devices", "60", "--stations", "10", "--interval", "5"],
  { cwd: work, stdio: ["ignore", hubLog, hubLog] },
);
let failed = false;
const fail = (why) => {
  console.error(why);
  failed = true;
};
const cleanup = () => {
  hub.kill("SIGTERM");
};
process.on("exit", cleanup);

try {
  // Ready: the demo's feeds are registered and the hub answers /readyz.
  let ready = false;
  for (let i = 0; i < 240 && !ready; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const probe = spawnSync("curl", ["-sf", "--max-time", "2", `http://127.0.0.1:${port}/readyz`]);
    ready = probe.status === 0 && fs.existsSync(path.join(dataDir, "admin.key"));
    if (hub.exitCode !== null) break;
  }
  if (!ready) throw new Error("the demo hub did not become ready:\n" + fs.readFileSync(path.join(work, "hub.log"), "utf8").slice(-3000));
  // The demo's first rounds of data, as the tour expects them: risk cells and fire weather
  // computed, and everything stored so far delivered to Kafka (the tour reads topics).
  const json = (p) => {
    const r = spawnSync("curl", ["-sf", "--max-time", "5", `http://127.0.0.1:${port}${p}`], { encoding: "utf8" });
    try { return r.status === 0 ? JSON.parse(r.stdout) : null; } catch { return null; }
  };
  let settled = false;
  for (let i = 0; i < 240 && !settled; i++) {
    const risk = json("/api/v1/layers/risk?limit=1");
    const fwi = json("/api/v1/layers/fwi?limit=1");
    const kafka = json("/api/v1/kafka");
    settled = risk?.numberMatched > 0 && fwi?.features?.length > 0 && kafka?.outbox_depth === 0 &&
              kafka?.delivered > 0;
    if (!settled) await new Promise((r) => setTimeout(r, 500));
  }
  if (!settled) throw new Error("the demo did not settle (risk cells, fire weather, Kafka) in 120 s");

  const prelude = `set -eo pipefail
curl() {
  local a n=0
  for a in "$@"; do case "$a" in -w|--write-out) command curl "$@"; return;; -N|-sN) n=1;; esac; done
  local rc=0
  command curl --fail-with-body --max-time 30 "$@" || rc=$?
  if [ "$rc" = 28 ] && [ "$n" = 1 ]; then return 0; fi
  return $rc
}
trap 'echo "@@failed: line \${LINENO}: \${BASH_COMMAND}@@"' ERR
`;
  let script = prelude;
  blocks.forEach((b, i) => {
    script += `echo "@@block ${i}@@"\n`;
    script += b.lines.join("\n").replaceAll("127.0.0.1:8080", `127.0.0.1:${port}`) + "\n";
  });
  script += `echo "@@end@@"\n`;
  fs.writeFileSync(path.join(work, "tour.sh"), script);
  const run = spawnSync("bash", [path.join(work, "tour.sh")], {
    cwd: work,
    encoding: "utf8",
    timeout: 540000,
    maxBuffer: 256 << 20,
    env: { ...process.env, PATH: `${path.dirname(path.resolve(binary))}:${process.env.PATH}` },
  });
  const out = (run.stdout || "") + (run.stderr ? "\n" + run.stderr : "");
  const parts = out.split(/@@block (\d+)@@\n/);
  const outputs = new Map();
  for (let k = 1; k < parts.length; k += 2) outputs.set(Number(parts[k]), parts[k + 1]);
  const failedAt = out.match(/@@failed: line (\d+): (.*)@@/);
  if (run.status !== 0 || !out.includes("@@end@@")) {
    const lastBlock = Math.max(...outputs.keys());
    fail(
      `README block ${lastBlock + 1} (README.md line ${blocks[lastBlock]?.start}) failed` +
        (failedAt ? ` at: ${failedAt[2]}` : ` (exit ${run.status}${run.signal ? ", " + run.signal : ""})`) +
        `\n--- its output (end) ---\n${(outputs.get(lastBlock) || out).slice(-3000)}`,
    );
  }
  blocks.forEach((b, i) => {
    const text = outputs.get(i);
    if (text === undefined) return;
    let from = 0;
    for (const e of b.expect) {
      const at = text.indexOf(e.text, from);
      if (at < 0) {
        fail(`README.md line ${e.line}: the documented answer '${e.text}' is not in the output` +
             `\n--- block ${i + 1}'s output from there ---\n${text.slice(from, from + 2000)}`);
        break;
      }
      from = at + e.text.length;
    }
  });
  const expectations = blocks.reduce((n, b) => n + b.expect.length, 0);
  if (!failed) {
    console.log(`README: ${blocks.length} blocks ran against a demo on port ${port}; ` +
                `${expectations} documented answers found`);
  }
} catch (e) {
  fail(String(e.stack || e));
} finally {
  cleanup();
  if (!failed) fs.rmSync(work, { recursive: true, force: true });
  else console.error(`(kept ${work} for a look: tour.sh, hub.log)`);
}
process.exit(failed ? 1 : 0);
