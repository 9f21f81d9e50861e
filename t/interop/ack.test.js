// Issue #14: the ack extension with the official CometD client (npm
// cometd on cometd-nodejs-client, its AckExtension registered).  A
// subscriber behind a proxy that loses responses carrying its deliveries
// (t/interop/lib/proxy.js) receives every message exactly once, in order;
// without the extension the same losses lose messages (so the first test
// can fail).  On the Redis engine the same holds through a worker killed
// while it held the connect, nginx -s reload, a host killed (the client
// comes back through another nginx on the same Redis), and Redis killed
// and started again with its append-only file.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { Server } from './lib/server.js';
import { Proxy } from './lib/proxy.js';
import { Redis, redisBinary } from './lib/redis.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdPublish,
    cometdSubscribe, newCometD, until,
} from './lib/clients.js';
import { engineOptions, matrix, stopRedis } from './lib/matrix.js';

const { AckExtension } = await import('cometd');

const CHANNEL = '/ack/stream';

// what the server writes when it delivers on CHANNEL
const DELIVERY = `"channel":"${CHANNEL}"`;

const N = 40;

const CI = process.env.CI === 'true';

after(stopRedis);

function range(from, to) {
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function withServers(options, count, body) {
    const servers = [];
    const clients = [];
    try {
        for (let i = 0; i < count; i++) {
            const s = new Server({ timeout: '5s', maxInterval: '10s',
                                   ...options });
            servers.push(s);
            await s.start();
        }
        await body(servers, clients);
    } finally {
        await Promise.all(clients.map((c) => cometdDisconnect(c)));
        try {
            for (const s of servers) {
                // the workers a test killed on purpose, and nothing else
                const bad = s.badLogLines().filter((l) => !(s.killed
                    && /worker process \d+ exited on signal 9/.test(l)));
                assert.deepEqual(bad, [], `error log of ${s.dir}`);
            }
        } finally {
            for (const s of servers) {
                await s.close();
            }
        }
    }
}

// a subscriber to CHANNEL, with or without acks: the numbers it got
async function subscriber(url, transport, ack, clients) {
    const c = newCometD(url, {}, transport);
    clients.push(c);
    if (ack) {
        c.registerExtension('ack', new AckExtension());
    }
    const got = [];
    const up = cometdConnected(c);
    const reply = await cometdHandshake(c);
    await up;
    assert.equal(reply.ext?.ack, ack ? true : undefined,
                 'the handshake reply says whether acks are on');
    await cometdSubscribe(c, CHANNEL, (m) => got.push(m.data.n));
    return got;
}

async function publisher(url, clients) {
    const c = newCometD(url, {}, 'long-polling');
    clients.push(c);
    const up = cometdConnected(c);
    await cometdHandshake(c);
    await up;
    return c;
}

// publishes from..to, one after the other; a publish refused (Redis down)
// is sent again once the server is back: it was not applied
async function publish(pub, from, to, gap = 15) {
    for (let n = from; n <= to; n++) {
        for (let tries = 0; ; tries++) {
            try {
                await cometdPublish(pub, CHANNEL, { n });
                break;
            } catch (e) {
                if (tries > 50) {
                    throw e;
                }
                await sleep(200);
            }
        }
        if (gap) {
            await sleep(gap);
        }
    }
}

async function allArrived(got, n, what) {
    await until(() => got.length >= n, 30000, what);
    // nothing more comes: no message twice
    await sleep(500);
    assert.deepEqual(got, range(1, n), `${what}: each once, in order`);
}

function killWorkers(server) {
    let pids = [];
    server.killed = true;
    try {
        pids = execFileSync('pgrep', ['-P', String(server.child.pid)])
            .toString().split('\n').filter(Boolean).map(Number);
    } catch { /* none */ }
    for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    return pids.length;
}

// the master and its workers at once, as a host that is gone
async function killHost(server) {
    const master = server.child;
    killWorkers(server);
    master.kill('SIGKILL');
    await server.exited;
    server.child = null;
}

for (const { transport, engine, name, skip } of
     matrix(['long-polling', 'websocket']))
{
    describe(`ack extension, ${name}: responses lost on the way`, {
        timeout: 120000,
        skip,
    }, () => {
        test('every message arrives once, in order', async () => {
            const options = await engineOptions(engine);
            await withServers(options, 1, async ([server], clients) => {
                const proxy = new Proxy(server.port);
                await proxy.start();
                try {
                    const got = await subscriber(proxy.url, transport, true,
                                                 clients);
                    const pub = await publisher(server.url, clients);
                    proxy.loseWhen((t) => t.includes(DELIVERY), 2);
                    await publish(pub, 1, N);
                    await allArrived(got, N, 'with acks');
                    assert.equal(proxy.lost, 2, 'two responses were lost');
                } finally {
                    await proxy.close();
                }
            });
        });

        test('without the extension the same losses lose messages',
             async () => {
            const options = await engineOptions(engine);
            await withServers(options, 1, async ([server], clients) => {
                const proxy = new Proxy(server.port);
                await proxy.start();
                try {
                    const got = await subscriber(proxy.url, transport, false,
                                                 clients);
                    const pub = await publisher(server.url, clients);
                    proxy.loseWhen((t) => t.includes(DELIVERY), 2);
                    await publish(pub, 1, N);
                    await until(() => proxy.lost === 2, 30000,
                                'two lost responses');
                    await publish(pub, N + 1, N + 1);
                    await until(() => got.includes(N + 1), 30000,
                                'the last message');
                    assert.ok(got.length < N + 1,
                              `messages lost: ${got.length} of ${N + 1}`);
                    assert.equal(new Set(got).size, got.length,
                                 'none twice');
                } finally {
                    await proxy.close();
                }
            });
        });
    });
}

const redisSkip = redisBinary() || CI ? false : 'redis-server is not installed';

describe('ack extension, long-polling, redis engine (2 workers): faults', {
    timeout: 180000,
    skip: redisSkip,
}, () => {
    test('workers killed (SIGKILL) while they hold the connect',
         async () => {
        const options = await engineOptions('redis');
        await withServers(options, 1, async ([server], clients) => {
            const got = await subscriber(server.url, 'long-polling', true,
                                         clients);
            const pub = await publisher(server.url, clients);
            for (let round = 0; round < 3; round++) {
                await publish(pub, round * 10 + 1, round * 10 + 10);
                assert.ok(killWorkers(server) > 0, 'workers killed');
            }
            await publish(pub, 31, N);
            await allArrived(got, N, 'through killed workers');
        });
    });

    test('nginx -s reload, twice', async () => {
        const options = await engineOptions('redis');
        await withServers(options, 1, async ([server], clients) => {
            const got = await subscriber(server.url, 'long-polling', true,
                                         clients);
            const pub = await publisher(server.url, clients);
            await publish(pub, 1, 15);
            server.child.kill('SIGHUP');
            await publish(pub, 16, 30);
            server.child.kill('SIGHUP');
            await publish(pub, 31, N);
            await allArrived(got, N, 'through reloads');
        });
    });

    test('a host killed: the client comes back through another',
         async () => {
        // one Bayeux server on two hosts: the same Redis, the same prefix
        const options = { ...await engineOptions('redis'),
                          prefix: `ack-hosts-${process.pid}:` };
        await withServers(options, 2, async ([a, b], clients) => {
            const proxy = new Proxy(a.port);
            await proxy.start();
            try {
                const got = await subscriber(proxy.url, 'long-polling', true,
                                             clients);
                const pub = await publisher(b.url, clients);
                await publish(pub, 1, 15);
                // a response on its way when the host goes
                proxy.loseWhen((t) => t.includes(DELIVERY), 1);
                await publish(pub, 16, 16, 0);
                await until(() => proxy.lost === 1, 10000, 'a lost response');
                await killHost(a);
                proxy.target = b.port;
                proxy.cutAll();
                await publish(pub, 17, N);
                await allArrived(got, N, 'through a host killed');
            } finally {
                await proxy.close();
            }
        });
    });

    test('Redis killed and started again (append-only file)', async () => {
        const redis = new Redis({ persistent: true });
        await redis.start();
        try {
            await withServers({ engine: 'redis', redis }, 1,
                              async ([server], clients) => {
                const proxy = new Proxy(server.port);
                await proxy.start();
                try {
                    const got = await subscriber(proxy.url, 'long-polling',
                                                 true, clients);
                    const pub = await publisher(server.url, clients);
                    await publish(pub, 1, 15);
                    proxy.loseWhen((t) => t.includes(DELIVERY), 1);
                    await publish(pub, 16, 16, 0);
                    await until(() => proxy.lost === 1, 10000,
                                'a lost response');
                    await redis.restart();
                    await publish(pub, 17, N);
                    await allArrived(got, N, 'through a Redis restart');
                } finally {
                    await proxy.close();
                }
            });
        } finally {
            await redis.stop();
        }
    });
});
