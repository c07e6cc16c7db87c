// Composes the supergraph of bench/peers.py from the four subgraphs' SDL (static composition,
// @apollo/composition: what `rover supergraph compose` does).
//
//   node compose.mjs OUT.graphql market=http://127.0.0.1:P/graphql tax=... courts=... penalties=...
//
// Writes the supergraph SDL to OUT.graphql; on composition errors prints them and exits 1.

import { writeFileSync } from 'node:fs';
import { composeServices } from '@apollo/composition';
import gql from 'graphql-tag';
import { SUBGRAPHS } from './schemas.mjs';

const [out, ...pairs] = process.argv.slice(2);
if (!out || pairs.length === 0) {
  console.error('usage: node compose.mjs OUT.graphql NAME=URL ...');
  process.exit(2);
}
const services = pairs.map((pair) => {
  const [name, url] = pair.split(/=(.*)/s);
  if (!SUBGRAPHS[name]) throw new Error(`unknown subgraph ${name}`);
  return { name, url, typeDefs: gql(SUBGRAPHS[name].typeDefs) };
});
const result = composeServices(services);
if (result.errors?.length) {
  for (const error of result.errors) console.error(`composition error: ${error.message}`);
  process.exit(1);
}
for (const hint of result.hints ?? []) console.error(`composition hint: ${hint.definition.code}: ${hint.message}`);
writeFileSync(out, result.supergraphSdl);
console.log(JSON.stringify({ supergraph: out, bytes: result.supergraphSdl.length }));
