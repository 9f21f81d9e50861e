'use strict';

// A Faye 1.4 server for the benchmark, as its README sets one up: a
// NodeAdapter mounted at /cometd on a plain http.Server, with the memory
// engine or faye-redis.
//
//   node bench/faye-server.js --port 8000 [--engine memory|redis]
//        [--redis-port 6379] [--timeout 30]
//
// Prints "ready <port>" on stdout once it listens.

const http = require('http');
const faye = require('faye');

function option(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = parseInt(option('port', '8000'), 10);
const engineName = option('engine', 'memory');
const redisPort = parseInt(option('redis-port', '6379'), 10);
const timeout = parseInt(option('timeout', '30'), 10);

const options = { mount: '/cometd', timeout: timeout };

if (engineName === 'redis') {
  options.engine = {
    type: require('faye-redis'),
    host: '127.0.0.1',
    port: redisPort,
    database: 0
  };
} else if (engineName !== 'memory') {
  console.error('faye-server: unknown engine ' + engineName);
  process.exit(2);
}

const bayeux = new faye.NodeAdapter(options);
const server = http.createServer();

bayeux.attach(server);

// held connects last up to "timeout"; Node must not cut them short
server.keepAliveTimeout = (timeout + 30) * 1000;
server.headersTimeout = (timeout + 31) * 1000;
server.requestTimeout = 0;

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready ' + port + '\n');
});

function stop() {
  server.close();
  process.exit(0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
