// Apollo Gateway for bench/peers.py: @apollo/gateway on a static supergraph, served by
// @apollo/server's standalone HTTP server, default settings.
//
//   NODE_ENV=production node apollo.mjs SUPERGRAPH.graphql [PORT]
//
// Listens on 127.0.0.1 (PORT, default a free one) and prints {"port": ...} when ready.

import { readFileSync } from 'node:fs';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

const [supergraphPath, portArg] = process.argv.slice(2);
if (!supergraphPath) {
  console.error('usage: node apollo.mjs SUPERGRAPH.graphql [PORT]');
  process.exit(2);
}
const gateway = new ApolloGateway({ supergraphSdl: readFileSync(supergraphPath, 'utf8') });
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, { listen: { port: Number(portArg ?? 0), host: '127.0.0.1' } });
console.log(JSON.stringify({ port: Number(new URL(url).port) }));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.stop().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
