// Issue #14 with the official CometD client (npm cometd on
// cometd-nodejs-client), on each engine:
//
// - no silent loss: one process, two clients; B publishes 2,000 messages
//   to /stream/1 in a loop (no batch) while A, subscribed over
//   long-polling, must receive all of them with the default
//   configuration, and so they do when B sends them in one batch (all of
//   them wait in A's queue at once); with a tiny bound
//   (bayeux_max_queue_size 2k) A is told instead (its /meta/connect fails with 408::queue_overflow and
//   handshake advice, and the client handshakes again);
// - timesync: with CometD's TimeSyncExtension and a client clock 5 s
//   ahead of the server's, getTimeOffset() and getNetworkLag() tell it.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdSubscribe,
    newCometD, until,
} from './lib/clients.js';
import { engineOptions, matrix, stopRedis } from './lib/matrix.js';

const { TimeSyncExtension } = await import('cometd');

const BURST = 2000;

after(stopRedis);

async function withServer(engine, location, body) {
    const server = new Server({ timeout: '5s', maxInterval: '10s', location,
                                ...await engineOptions(engine) });
    await server.start();
    const clients = [];
    try {
        await body(server, clients);
    } finally {
        await Promise.all(clients.map((c) => cometdDisconnect(c)));
        try {
            server.assertCleanLog();
        } finally {
            await server.close();
        }
    }
}

// A subscribed to /stream/1 and B, both connected; A's messages in "got"
async function pair(server, clients) {
    const a = newCometD(server.url, {}, 'long-polling');
    const b = newCometD(server.url, {}, 'long-polling');
    clients.push(a, b);
    for (const c of [a, b]) {
        const up = cometdConnected(c);
        await cometdHandshake(c);
        await up;
    }
    const got = [];
    await cometdSubscribe(a, '/stream/1', (m) => got.push(m.data.n));
    return { a, b, got };
}

// long-polling, as in the issue; each engine (TEST_INTEROP_ONLY applies)
for (const { engine, skip } of matrix(['long-polling'])) {
    describe(`CometD client, ${engine} engine: no silent loss`, {
        timeout: 120000,
        skip,
    }, () => {
        test(`${BURST} messages in a loop all arrive with the default bounds`,
             async () => {
            await withServer(engine, '', async (server, clients) => {
                const { a, b, got } = await pair(server, clients);
                const failures = [];
                a.addListener('/meta/connect', (m) => {
                    if (!m.successful) {
                        failures.push(m);
                    }
                });
                for (let n = 1; n <= BURST; n++) {
                    b.publish('/stream/1', { n });
                }
                await until(() => got.length >= BURST, 60000,
                            `${BURST} messages`);
                assert.deepEqual(got, Array.from({ length: BURST },
                                                 (_, i) => i + 1),
                                 'all of them, in order, once');
                assert.deepEqual(failures, [], 'no failed connect');
                assert.doesNotMatch(server.errorLog(),
                                    /queue of a session is full/);
            });
        });

        // The loop above may be drained as fast as it comes (B's publishes
        // go one request at a time): here all 2,000 wait in A's queue at
        // once, which the former default (bayeux_max_queue 1000, oldest
        // dropped) lost half of.
        test(`${BURST} messages in one batch all arrive with the default `
             + 'bounds', async () => {
            await withServer(engine, `bayeux_max_batch ${BURST};`,
                             async (server, clients) => {
                const { b, got } = await pair(server, clients);
                b.batch(() => {
                    for (let n = 1; n <= BURST; n++) {
                        b.publish('/stream/1', { n });
                    }
                });
                await until(() => got.length >= BURST, 60000,
                            `${BURST} messages`);
                assert.deepEqual(got, Array.from({ length: BURST },
                                                 (_, i) => i + 1),
                                 'all of them, in order, once');
                assert.doesNotMatch(server.errorLog(),
                                    /queue of a session is full/);
            });
        });

        test('with a tiny bound, the client is told and handshakes again',
             async () => {
            await withServer(engine, 'bayeux_max_queue_size 2k;',
                             async (server, clients) => {
                const { a, b, got } = await pair(server, clients);
                const first = a.getClientId();
                const told = [];
                const handshakes = [];
                a.addListener('/meta/connect', (m) => {
                    if (!m.successful) {
                        told.push(m);
                    }
                });
                a.addListener('/meta/handshake', (m) => {
                    handshakes.push(m);
                });
                // in batches of 100 messages of about 1 KB: three queued
                // overflow 2k.  With messages of a few bytes the Redis
                // engine's takes of A's queue, between B's publishes,
                // could keep it under the bound all along.
                const pad = 'x'.repeat(1000);
                for (let k = 0; k < BURST / 100; k++) {
                    b.batch(() => {
                        for (let n = k * 100 + 1; n <= k * 100 + 100; n++) {
                            b.publish('/stream/1', { n, pad });
                        }
                    });
                }
                await until(() => handshakes.some((m) => m.successful),
                            60000, 'a new handshake of A');
                const overflow = told.find((m) => m.error
                                           === '408::queue_overflow');
                assert.ok(overflow, 'a connect was told 408::queue_overflow: '
                                    + JSON.stringify(told));
                assert.equal(overflow.advice.reconnect, 'handshake');
                const again = handshakes.find((m) => m.successful);
                assert.notEqual(again.clientId, first, 'a new session');
                assert.ok(got.length < BURST, 'messages were lost');
                assert.deepEqual(got, Array.from({ length: got.length },
                                                 (_, i) => i + 1),
                                 'those received: the first ones, in order');
                await until(() => a.getStatus() === 'connected', 10000,
                            'A connected again');
                assert.match(server.errorLog(),
                             /\[warn\] .*bayeux: queue of a session is full/);
            });
        });
    });

    describe(`CometD client, ${engine} engine: timesync`, {
        timeout: 60000,
        skip,
    }, () => {
        test('getTimeOffset() and getNetworkLag() with a clock 5 s ahead',
             async () => {
            await withServer(engine, '', async (server, clients) => {
                const SKEW = 5000;
                const getTime = Date.prototype.getTime;
                // the client's clock: the extension reads new Date().getTime()
                Date.prototype.getTime = function () {
                    return getTime.call(this) + SKEW;
                };
                try {
                    const c = newCometD(server.url, {}, 'long-polling');
                    clients.push(c);
                    const ts = new TimeSyncExtension();
                    c.registerExtension('timesync', ts);
                    const seen = [];
                    c.registerExtension('timesync-seen', {
                        incoming(m) {
                            if (m.ext && m.ext.timesync) {
                                seen.push(m.ext.timesync);
                            }
                            return m;
                        },
                    });
                    const up = cometdConnected(c);
                    await cometdHandshake(c);
                    await up;
                    for (let i = 0; i < 4; i++) {
                        const sub = await cometdSubscribe(c, `/ts/${i}`,
                                                          () => {});
                        c.unsubscribe(sub);
                    }
                    assert.ok(seen.length >= 1, 'replies carry timesync');
                    for (const t of seen) {
                        assert.deepEqual(Object.keys(t).sort(),
                                         ['a', 'p', 'tc', 'ts']);
                    }
                    const offset = ts.getTimeOffset();
                    const lag = ts.getNetworkLag();
                    assert.ok(Math.abs(offset + SKEW) < 100,
                              `offset ${offset} ms, about -${SKEW}`);
                    assert.ok(lag >= 0 && lag < 100, `lag ${lag} ms`);
                    const error = ts.getServerTime() - getTime.call(new Date());
                    assert.ok(Math.abs(error) < 100,
                              `getServerTime() off by ${error} ms`);
                } finally {
                    Date.prototype.getTime = getTime;
                }
            });
        });
    });
}
