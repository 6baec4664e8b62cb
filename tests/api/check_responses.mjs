// Checks every /api/v1 response the integration tests received (traced by the tests' HTTP client
// into FIREHUB_API_TRACE) against docs/openapi.yaml, so the description cannot drift from the
// server:
//   - the description itself is valid OpenAPI 3.1;
//   - each exchange's path and method are described (an undescribed route fails);
//   - its status is described (or falls to the operation's `default`);
//   - its content type is one the response lists, and a JSON body validates against its schema.
// Usage: node check_responses.mjs <openapi.yaml> <trace dir> [--min N]
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Validator } from "@seriousme/openapi-schema-validator";

const [specPath, traceDir, ...rest] = process.argv.slice(2);
if (!specPath || !traceDir) {
  console.error("usage: node check_responses.mjs <openapi.yaml> <trace dir> [--min N]");
  process.exit(2);
}
const minIndex = rest.indexOf("--min");
const minimum = minIndex >= 0 ? Number(rest[minIndex + 1]) : 1;

const spec = YAML.parse(fs.readFileSync(specPath, "utf8"));
const specCheck = await new Validator().validate(structuredClone(spec));
if (!specCheck.valid) {
  console.error("docs/openapi.yaml is not valid OpenAPI 3.1:");
  console.error(JSON.stringify(specCheck.errors, null, 2));
  process.exit(1);
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "openapi.json", components: spec.components }, "openapi.json");
const validators = new Map();
function validatorFor(schema) {
  const key = JSON.stringify(schema);
  if (!validators.has(key)) {
    // References point into the description's components.
    const rebased = JSON.parse(key.replaceAll('"#/components/', '"openapi.json#/components/'));
    validators.set(key, ajv.compile(rebased));
  }
  return validators.get(key);
}

// The described paths, as patterns: a template's {param} is one segment.
const routes = Object.entries(spec.paths).map(([template, item]) => {
  const segments = template.split("/").slice(1);
  const fixed = segments.filter((s) => !s.startsWith("{")).length;
  return { template, item, segments, fixed };
});
function match(pathname) {
  const parts = pathname.split("/").slice(1);
  let best = null;
  for (const r of routes) {
    if (r.segments.length !== parts.length) continue;
    if (!r.segments.every((s, i) => s.startsWith("{") || s === parts[i])) continue;
    if (!best || r.fixed > best.fixed) best = r;  // /layers/risk/stream over /layers/{layer}/...
  }
  return best;
}

function mediaOf(type) {
  return (type || "").split(";")[0].trim().toLowerCase();
}

const failures = [];
const described = new Set();
let checked = 0;
const files = fs.existsSync(traceDir)
  ? fs.readdirSync(traceDir).filter((f) => f.endsWith(".ndjson"))
  : [];
for (const file of files) {
  const lines = fs.readFileSync(path.join(traceDir, file), "utf8").split("\n");
  for (const line of lines) {
    if (!line.trim()) continue;
    const x = JSON.parse(line);
    const url = new URL(x.target, "http://hub");
    const where = `${x.method} ${x.target} -> ${x.status} (${file})`;
    const route = match(url.pathname);
    if (!route) {
      failures.push(`${where}: no path of the description matches`);
      continue;
    }
    const method = x.method === "HEAD" ? "get" : x.method.toLowerCase();
    const op = route.item[method];
    if (!op) {
      // A method the route does not take must be answered 405 with Allow.
      if (x.status !== 405) failures.push(`${where}: ${route.template} does not describe ${method}`);
      checked++;
      continue;
    }
    described.add(`${method} ${route.template}`);
    const response = op.responses[String(x.status)] ?? op.responses.default;
    if (!response) {
      failures.push(`${where}: status ${x.status} is not described for ${method} ${route.template}`);
      continue;
    }
    const resolved = response.$ref
      ? response.$ref.split("/").slice(1).reduce((o, k) => o[k], spec)
      : response;
    checked++;
    if (!resolved.content || x.status === 304 || x.method === "HEAD") continue;
    const media = mediaOf(x.type);
    const entry = Object.entries(resolved.content).find(([t]) => mediaOf(t) === media);
    if (!entry) {
      failures.push(`${where}: content type '${x.type}' is not one of ${Object.keys(resolved.content).join(", ")}`);
      continue;
    }
    const schema = entry[1].schema;
    if (!schema || x.body === undefined || x.encoding || !media.endsWith("json")) continue;
    // NDJSON: each line is one value of the schema.
    const ndjson = media.endsWith("ndjson");
    let bodies;
    try {
      bodies = ndjson ? x.body.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)) : [JSON.parse(x.body)];
    } catch (e) {
      failures.push(`${where}: the body is not ${ndjson ? "NDJSON" : "JSON"}: ${e.message}`);
      continue;
    }
    const validate = validatorFor(schema);
    if (!bodies.every((body) => validate(body))) {
      failures.push(
        `${where}: the body does not match the schema:\n    ` +
          validate.errors.slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`).join("\n    ") +
          `\n    body: ${x.body.slice(0, 400)}`,
      );
    }
  }
}

const operations = [];
for (const r of routes) {
  for (const m of ["get", "post", "patch", "delete", "put"]) {
    if (r.item[m]) operations.push(`${m} ${r.template}`);
  }
}
const untested = operations.filter((o) => !described.has(o));
console.log(
  `api contract: ${checked} responses from ${files.length} test processes checked against ` +
    `docs/openapi.yaml; ${operations.length - untested.length} of ${operations.length} described operations exercised`,
);
if (untested.length) console.log(`  not exercised by the tests: ${untested.join(", ")}`);
if (checked < minimum) {
  failures.push(`only ${checked} responses traced (at least ${minimum} expected): did the integration tests run with FIREHUB_API_TRACE?`);
}
if (failures.length) {
  console.error(`${failures.length} responses do not match the description:`);
  for (const f of failures.slice(0, 60)) console.error("  " + f);
  process.exit(1);
}
