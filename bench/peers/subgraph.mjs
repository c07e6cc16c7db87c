// One department subgraph of bench/peers.py: its schema built by @apollo/subgraph's
// buildSubgraphSchema, its documents executed by graphql-jit behind node:http.
//
//   node subgraph.mjs NAME DATA_JSON [PORT]
//
// NAME is a key of SUBGRAPHS (schemas.mjs). Listens on 127.0.0.1 (PORT, default a free one) and
// prints one JSON line {"name": ..., "port": ...} once it accepts connections. POST /graphql
// takes {query, variables, operationName}; each document is parsed, validated (graphql-js) and
// compiled (graphql-jit: 4-5x faster than graphql-js `execute` here; from request body to
// answer written, one company takes 30-40 µs, 100 companies 0.2-0.35 ms) once, cached by its
// text and operation name (at most 1,000), so an answer costs one compiled query plus its JSON.
// GET /health answers 200;
// GET /stats answers the handling times (body read → answer written, in µs: count, p50, p99,
// mean) of the POSTs since the previous GET /stats, and starts counting afresh.
// Minimal on purpose: the benchmark measures the gateways, not the subgraphs.

import http from 'node:http';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse, validate } from 'graphql';
import { compileQuery, isCompiledQuery } from 'graphql-jit';
import gql from 'graphql-tag';
import { SUBGRAPHS, loadData } from './schemas.mjs';

const [name, dataPath, portArg] = process.argv.slice(2);
const spec = SUBGRAPHS[name];
if (!spec || !dataPath) {
  console.error(`usage: node subgraph.mjs {${Object.keys(SUBGRAPHS).join('|')}} DATA_JSON [PORT]`);
  process.exit(2);
}
const schema = buildSubgraphSchema([{ typeDefs: gql(spec.typeDefs), resolvers: spec.resolvers(loadData(dataPath)) }]);
const documents = new Map(); // operation name + query text → { compiled } | { errors }
const MAX_DOCUMENTS = 1000;
const timings = new Float64Array(200_000); // handling times in µs since the last GET /stats
let timed = 0;

function stats() {
  const sorted = timings.slice(0, Math.min(timed, timings.length)).sort();
  const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null);
  const out = { name, count: timed, p50_us: pick(0.5), p99_us: pick(0.99),
    mean_us: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null };
  timed = 0;
  return out;
}

function prepared(query, operationName) {
  const key = `${operationName ?? ''}\n${query}`;
  let entry = documents.get(key);
  if (entry === undefined) {
    try {
      const document = parse(query);
      const errors = validate(schema, document);
      const compiled = errors.length ? null : compileQuery(schema, document, operationName ?? undefined);
      entry = errors.length ? { errors } : isCompiledQuery(compiled) ? { compiled } : { errors: compiled.errors };
    } catch (error) {
      entry = { errors: [error] };
    }
    if (documents.size >= MAX_DOCUMENTS) documents.clear();
    documents.set(key, entry);
  }
  return entry;
}

function send(res, status, payload, text) {
  const body = text ?? JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function answer(res, raw) {
  let request;
  try {
    request = JSON.parse(raw);
  } catch {
    return send(res, 400, { errors: [{ message: 'the body is not JSON' }] });
  }
  if (typeof request?.query !== 'string') return send(res, 400, { errors: [{ message: 'no query' }] });
  const entry = prepared(request.query, request.operationName);
  if (entry.errors) return send(res, 400, { errors: entry.errors.map((e) => ({ message: e.message })) });
  const result = await entry.compiled.query(undefined, undefined, request.variables ?? {});
  send(res, 200, null, entry.compiled.stringify(result));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return send(res, 200, stats());
  if (req.method === 'GET') return send(res, req.url === '/health' ? 200 : 404, { name });
  if (req.method !== 'POST') return send(res, 405, { errors: [{ message: 'POST only' }] });
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const t0 = process.hrtime.bigint();
    answer(res, Buffer.concat(chunks).toString('utf8'))
      .catch((error) => send(res, 500, { errors: [{ message: String(error) }] }))
      .finally(() => {
        if (timed < timings.length) timings[timed] = Number(process.hrtime.bigint() - t0) / 1000;
        timed += 1;
      });
  });
});
// Gateways keep connections in pools between runs: do not close idle ones under them.
server.keepAliveTimeout = 600_000;
server.headersTimeout = 601_000;
server.requestTimeout = 0;
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ name, port: server.address().port }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
