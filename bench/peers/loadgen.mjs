// The load generator of bench/peers.py: closed-loop HTTP POSTs at a fixed concurrency.
//
//   node loadgen.mjs CONFIG.json
//
// CONFIG.json: {"url": ..., "bodies": ["...", ...], "headers": {...}, "concurrency": 8,
//               "duration": 8, "warmup": 2, "pids": [123], "ourPids": [456, 789],
//               "clkTck": 100, "statsUrls": ["http://127.0.0.1:P/stats"], "timeout": 60}
//
// `concurrency` connections (keep-alive), each sending the next request as soon as the previous
// answer has been read in full; the request bodies are taken from `bodies` in turn (all
// connections share one cursor), so consecutive requests ask about different subjects. First `warmup` seconds untimed, then `duration` seconds timed;
// requests in flight at the deadline are awaited (and counted), so the window ends when the last
// answer arrives. At the window's edges it reads utime + stime of every pid in `pids`
// (/proc/PID/stat: all threads of the process) and the busy time of each core (/proc/stat).
// Prints one JSON object: completed, seconds, rps, latency (ms: p50 p90 p99 max mean), non200,
// graphqlErrors (a 200 whose body holds "errors"), transportErrors, cpuTicks (per pid), cores
// (busy % per core over the window), loadgenCpuMs, bytes (of the last answer), and
// foreignCpuPct: user + system time of the whole machine that neither `pids`, `ourPids` nor this
// process used (other tenants of the machine), in % of one core; and `subgraphs`: what each of
// `statsUrls` (a subgraph's GET /stats) answered for the window (its handling times).
// Bounded: the run stops at the deadline; a transport error waits 5 ms before the next request,
// and more than 1,000 of them end the run early.

import http from 'node:http';
import { readFileSync } from 'node:fs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const url = new URL(config.url);
const bodies = config.bodies.map((text) => Buffer.from(text, 'utf8'));
let cursor = 0;
const concurrency = Math.max(1, Number(config.concurrency ?? 1));
const duration = Number(config.duration ?? 5) * 1000;
const warmup = Number(config.warmup ?? 1) * 1000;
const timeout = Number(config.timeout ?? 60) * 1000;
const pids = config.pids ?? [];
const ours = [...new Set([...pids, ...(config.ourPids ?? []), process.pid])];
const clkTck = Number(config.clkTck ?? 100);
const statsUrls = config.statsUrls ?? [];
const MAX_TRANSPORT_ERRORS = 1000;

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
const headers = {
  'content-type': 'application/json',
  accept: 'application/json',
  ...(config.headers ?? {}),
};
const requests = bodies.map((body) => ({ body, headers: { ...headers, 'content-length': body.length } }));
const ERRORS = Buffer.from('"errors"');

function post() {
  const { body, headers: sent } = requests[cursor];
  cursor = (cursor + 1) % requests.length;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', agent, timeout,
        headers: sent,
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function procTicks(pid) {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return null;
  }
}

function coreTimes() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d*) (.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') {
      const v = m[2].trim().split(/\s+/).map(Number);
      out.processTicks = v[0] + v[1] + v[2]; // user + nice + system, every core
      continue;
    }
    const v = m[2].trim().split(/\s+/).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out[m[1]] = { idle, total };
  }
  return out;
}

function snapshot() {
  return {
    t: performance.now(),
    ticks: Object.fromEntries(pids.map((pid) => [pid, procTicks(pid)])),
    ours: ours.reduce((sum, pid) => sum + (procTicks(pid) ?? 0), 0),
    cores: coreTimes(),
    self: process.cpuUsage(),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function run(ms, record) {
  const stopAt = performance.now() + ms;
  const state = { transport: 0 };
  async function worker() {
    while (performance.now() < stopAt && state.transport <= MAX_TRANSPORT_ERRORS) {
      const t0 = process.hrtime.bigint();
      let answer;
      try {
        answer = await post();
      } catch (error) {
        state.transport += 1;
        record?.transport(error);
        await sleep(5);
        continue;
      }
      record?.answer(answer, Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const latencies = [];
const result = { non200: 0, graphqlErrors: 0, transportErrors: 0, bytes: 0, firstError: null };
const recorder = {
  answer({ status, body: answer }, ms) {
    latencies.push(ms);
    result.bytes = answer.length;
    if (status !== 200) {
      result.non200 += 1;
      result.firstError ??= `HTTP ${status}: ${answer.subarray(0, 300).toString()}`;
    } else if (answer.indexOf(ERRORS) !== -1) {
      result.graphqlErrors += 1;
      result.firstError ??= answer.subarray(0, 600).toString();
    }
  },
  transport(error) {
    result.transportErrors += 1;
    result.firstError ??= `transport: ${error?.message ?? error}`;
  },
};

async function subgraphStats() {
  return Promise.all(statsUrls.map(async (u) => {
    try {
      return await (await fetch(u)).json();
    } catch (error) {
      return { url: u, error: String(error) };
    }
  }));
}

if (warmup > 0) await run(warmup, null);
await subgraphStats(); // start counting afresh
const start = snapshot();
await run(duration, recorder);
const end = snapshot();
const subgraphs = await subgraphStats();

const seconds = (end.t - start.t) / 1000;
const sorted = Float64Array.from(latencies).sort();
const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : null);
const cores = {};
for (const [core, s] of Object.entries(start.cores)) {
  if (core === 'processTicks') continue;
  const e = end.cores[core];
  const total = e.total - s.total;
  cores[core] = total > 0 ? (100 * (total - (e.idle - s.idle))) / total : null;
}
const selfCpu = (end.self.user - start.self.user + end.self.system - start.self.system) / 1000;
console.log(
  JSON.stringify({
    ...result,
    completed: latencies.length,
    seconds,
    rps: latencies.length / seconds,
    latency: {
      p50: pick(0.5),
      p90: pick(0.9),
      p99: pick(0.99),
      max: sorted.length ? sorted[sorted.length - 1] : null,
      mean: latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null,
    },
    cpuTicks: Object.fromEntries(
      pids.map((pid) => [pid, start.ticks[pid] == null || end.ticks[pid] == null ? null : end.ticks[pid] - start.ticks[pid]]),
    ),
    cores,
    loadgenCpuMs: selfCpu,
    subgraphs,
    foreignCpuPct: Math.max(0, (100 * (end.cores.processTicks - start.cores.processTicks - (end.ours - start.ours))) / clkTck / seconds),
  }),
);
agent.destroy();
