// The official CometD JavaScript client (npm cometd, on Node through
// cometd-nodejs-client) against ngx_bayeux_module: every scenario for each
// transport (websocket, long-polling, callback-polling; one registered at
// a time) and each engine (memory with 1 worker, redis with 2).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    COMETD_TRANSPORTS, cometdConnected, cometdDisconnect, cometdHandshake,
    cometdPublish, cometdSubscribe, cometdUnsubscribe, newCometD,
    uniqueChannel, until,
} from './lib/clients.js';
import {
    HOLD_SLACK_MS, assertHeldWithinAdvice, exchange, rawConnect,
    withServerLog,
} from './lib/scenarios.js';
import {
    EXCHANGE_QUEUE, count, engineOptions, matrix, requestsSeen, stopRedis,
    websocketsClosed,
} from './lib/matrix.js';

const combos = matrix(COMETD_TRANSPORTS);

after(stopRedis);

// What the server saw of a transport: only its kind of request.
function assertOnlyTransport(server, transport) {
    const seen = requestsSeen(server);
    assert.deepEqual(seen.other, [], 'unexpected requests');
    if (transport === 'websocket') {
        assert.ok(seen.upgrades > 0, 'websocket upgrades');
        assert.equal(seen.post, 0, 'POST requests over websocket');
        assert.equal(seen.get, 0, 'GET (JSONP) requests over websocket');
    } else if (transport === 'long-polling') {
        assert.ok(seen.post > 0, 'POST requests');
        assert.equal(seen.upgrades, 0, 'websocket upgrades');
        assert.equal(seen.get, 0, 'GET (JSONP) requests');
    } else {
        assert.ok(seen.get > 0, 'GET (JSONP) requests');
        assert.equal(seen.upgrades, 0, 'websocket upgrades');
        assert.equal(seen.post, 0, 'POST requests');
    }
}

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`CometD client, ${combo.name}`, {
        timeout: 180000,
        skip: combo.skip,
    }, () => {
        let server;
        const clients = [];

        function client(config) {
            const c = newCometD(server.url, config, transport);
            clients.push(c);
            return c;
        }

        async function connected(config) {
            const c = client(config);
            const up = cometdConnected(c);
            await cometdHandshake(c);
            await up;
            return c;
        }

        before(async () => {
            server = new Server({ timeout: '5s', maxInterval: '10s',
                                  location: EXCHANGE_QUEUE,
                                  ...await engineOptions(engine) });
            await server.start();
        });

        after(async () => {
            await Promise.all(clients.map((c) => cometdDisconnect(c)));
            try {
                for (const c of clients) {
                    assertHeldWithinAdvice(c.connectLog);
                    assert.deepEqual([...c.connectLog.connectionTypes],
                                     [transport]);
                }
                if (clients.length) {
                    // every client opened a websocket of its own; nginx
                    // logs one when it is closed
                    if (transport === 'websocket') {
                        const n = clients.length;
                        await until(() => requestsSeen(server).upgrades >= n,
                                    2000, 'a websocket upgrade per client');
                    }
                    assertOnlyTransport(server, transport);
                }
                server.assertCleanLog();
            } finally {
                await server.close();
            }
        });

        test(`handshake over ${transport} only`, async () => {
            const c = client();
            assert.deepEqual(c.getTransportTypes(), [transport]);

            const up = cometdConnected(c);
            const reply = await cometdHandshake(c);
            assert.equal(reply.successful, true);
            assert.equal(reply.channel, '/meta/handshake');
            assert.match(reply.clientId, /^[0-9A-Za-z_-]{20,}$/,
                         'clientId of at least 20 characters');
            assert.ok(reply.supportedConnectionTypes.includes(transport));
            assert.equal(c.getTransport().type, transport);

            const connect = await up;
            assert.equal(connect.successful, true);
            await until(() => c.getStatus() === 'connected', 2000,
                        'connected');
            assert.equal(c.getClientId(), reply.clientId);
            assert.equal(c.getTransport().type, transport);

            assert.equal(c.requests[0].messages[0].channel, '/meta/handshake');
            assert.equal(c.requests[1].messages[0].channel, '/meta/connect');
            if (transport === 'websocket') {
                // everything, the handshake too, over one websocket
                const ws = server.url.replace(/^http/, 'ws');
                for (const r of c.requests) {
                    assert.equal(r.url, ws);
                }
            } else {
                // CometD sends to <url>/handshake, then <url>/connect
                assert.equal(c.requests[0].url, server.url + '/handshake');
                assert.equal(c.requests[1].url, server.url + '/connect');
            }
            if (transport === 'callback-polling') {
                const scripts = c.getTransport().scripts;
                assert.ok(scripts.length >= 1);
                for (const s of scripts) {
                    assert.equal(s.status, 200);
                    assert.match(s.type, /^(text|application)\/javascript\b/);
                }
            }
            assert.deepEqual([...c.connectLog.connectionTypes], [transport]);
        });

        test('subscribe, publish from a second client, receive', async () => {
            const channel = uniqueChannel('/chat');
            const a = await connected();
            const b = await connected();
            const got = [];

            await cometdSubscribe(a, channel, (m) => got.push(m));
            const reply = await cometdPublish(b, channel, { text: 'hello' });
            assert.equal(reply.successful, true);

            await until(() => got.length >= 1, 10000, 'the message');
            assert.equal(got.length, 1);
            assert.equal(got[0].channel, channel);
            assert.deepEqual(got[0].data, { text: 'hello' });
        });

        test('wildcard subscriptions: * and **', async () => {
            const base = uniqueChannel('/wild');
            const sub = await connected();
            const pub = await connected();
            const one = [];
            const all = [];

            await cometdSubscribe(sub, base + '/*',
                                  (m) => one.push(m.channel));
            await cometdSubscribe(sub, base + '/**',
                                  (m) => all.push(m.channel));

            for (const ch of [base + '/a', base + '/a/b', base + '/b',
                              base + '/a/b/c', base]) {
                await cometdPublish(pub, ch, { ch });
            }
            await cometdPublish(pub, base + '/end', {});

            await until(() => all.includes(base + '/end'), 10000,
                        'the last one');
            assert.deepEqual(one, [base + '/a', base + '/b', base + '/end']);
            assert.deepEqual(all, [base + '/a', base + '/a/b', base + '/b',
                                   base + '/a/b/c', base + '/end']);
        });

        test('batch(): subscribe and publish in one request', async () => {
            const channel = uniqueChannel('/batch');
            const c = await connected();
            const got = [];
            let subscribed = null;
            let published = null;

            const before = c.requests.length;
            c.batch(() => {
                c.subscribe(channel, (m) => got.push(m),
                            (r) => { subscribed = r; });
                c.publish(channel, { n: 1 }, (r) => { published = r; });
            });

            await until(() => got.length === 1 && subscribed && published,
                        10000, 'the batch to complete');
            assert.equal(subscribed.successful, true);
            assert.equal(published.successful, true);
            assert.deepEqual(got[0].data, { n: 1 });

            // one request (websocket message) carried both, subscribe first
            const batch = c.requests.slice(before).filter((r) =>
                r.messages.some((m) => m.channel === channel));
            assert.equal(batch.length, 1);
            assert.deepEqual(batch[0].messages.map((m) => m.channel),
                             ['/meta/subscribe', channel]);
        });

        test('unsubscribe stops delivery', async () => {
            const channel = uniqueChannel('/unsub');
            const control = uniqueChannel('/control');
            const sub = await connected();
            const pub = await connected();
            const got = [];
            const ctl = [];

            const s = await cometdSubscribe(sub, channel,
                                            (m) => got.push(m.data));
            await cometdSubscribe(sub, control, (m) => ctl.push(m.data));

            await cometdPublish(pub, channel, { n: 1 });
            await until(() => got.length === 1, 10000, 'the first message');

            const reply = await cometdUnsubscribe(sub, s);
            assert.equal(reply.successful, true);
            assert.equal(reply.subscription, channel);

            await cometdPublish(pub, channel, { n: 2 });
            await cometdPublish(pub, control, { n: 3 });
            await until(() => ctl.length === 1, 10000, 'the control message');
            // delivery is in order on one session: n:2 would have come first
            await new Promise((r) => setTimeout(r, 200));
            assert.deepEqual(got, [{ n: 1 }]);
        });

        test('message id and ext round trip', async () => {
            const channel = uniqueChannel('/ids');
            const sub = await connected();
            const pub = await connected();
            const got = [];
            const sent = [];

            pub.registerExtension('record-sent', {
                outgoing(m) {
                    if (m.channel === channel) {
                        sent.push(structuredClone(m));
                    }
                    return m;
                },
            });
            await cometdSubscribe(sub, channel, (m) => got.push(m));

            const ext = { trace: 'abc-123',
                          nested: { list: [1, 'two', null] } };
            await cometdPublish(pub, channel, { v: 1 }, { ext });
            await until(() => got.length === 1, 10000, 'the message');

            assert.equal(sent.length, 1);
            assert.equal(got[0].id, sent[0].id, 'the publisher\'s message id');
            assert.deepEqual(got[0].ext, ext);
            assert.deepEqual(got[0].data, { v: 1 });
            assert.equal(got[0].channel, channel);
        });

        test('disconnect', async () => {
            const channel = uniqueChannel('/bye');
            const c = await connected();
            const pub = await connected();
            const got = [];
            await cometdSubscribe(c, channel, (m) => got.push(m));
            const clientId = c.getClientId();

            // a /meta/connect is held now; disconnect must not wait for it
            await new Promise((r) => setTimeout(r, 200));
            const t0 = Date.now();
            const reply = await cometdDisconnect(c);
            const took = Date.now() - t0;

            assert.equal(reply.successful, true);
            assert.equal(reply.channel, '/meta/disconnect');
            assert.equal(c.isDisconnected(), true);
            assert.ok(took < 2000, `disconnect took ${took} ms`);

            // the held connect came back too (released, not timed out)
            await until(() => c.connectLog.pending.size === 0, 2000,
                        'the held /meta/connect to return');

            // the session is gone on the server
            const raw = await rawConnect(server.url, clientId);
            assert.equal(raw.successful, false);
            assert.match(raw.error, /^402:/);

            // and nothing is delivered to it any more
            await cometdPublish(pub, channel, { late: true });
            await new Promise((r) => setTimeout(r, 200));
            assert.equal(got.length, 0);
        });

        if (transport === 'websocket') {
            // The CometD client closes its websocket when the
            // /meta/disconnect reply comes, unless a /meta/connect is still
            // waiting for its reply: the held connect must be answered
            // first, on either engine (the Redis engine learns of the
            // disconnect through Redis, after the reply is ready; the
            // websocket transport answers the connect held on the same
            // socket first).
            test('disconnect over websocket: the held /meta/connect is '
                 + 'answered first, and the client closes its websocket', async () => {
                const c = await connected();
                await new Promise((r) => setTimeout(r, 200));
                assert.equal(c.connectLog.pending.size, 1, 'a held connect');
                const closed = websocketsClosed(server);
                const reply = await cometdDisconnect(c);
                assert.equal(reply.successful, true);
                await until(() => c.connectLog.pending.size === 0, 1000,
                            'the held /meta/connect to return');
                assert.deepEqual(c.connectLog.replies.slice(-2)
                    .map((m) => m.channel),
                                 ['/meta/connect', '/meta/disconnect']);
                await until(() => websocketsClosed(server) > closed,
                            2000, 'the websocket to be closed');
            });
        }

        test(`${count(combo.messages)} messages between two processes, `
             + 'in order', { timeout: 120000 }, async () => {
            const n = combo.messages;
            const r = await withServerLog(server, exchange(
                'cometd', 'cometd', server.url, n, 100000,
                [transport, transport]));
            for (const p of r) {
                assert.equal(p.received, n, `${p.name} received all`);
                assert.equal(p.disorder, null, `${p.name} in order`);
                assert.equal(p.failed, null, `${p.name}: no publish failed`);
                assert.equal(p.overheld, 0,
                             `${p.name}: connects within advice`);
                assert.deepEqual(p.connectionTypes, [transport]);
                assert.equal(p.transportUsed, transport);
            }
        });

        if (engine === 'memory') {
            test('server restarted under a connected client: 402, '
                 + 'handshake again', () => restartForgets(transport));
        } else {
            test('server restarted under a connected client: the session '
                 + 'lives on in Redis', () => restartKeeps(transport));
        }
    });
}

// The memory engine forgets every session when nginx stops: the client is
// told 402::session_unknown, handshakes again (new clientId) and, the
// CometD way, subscribes again from its /meta/handshake listener.
async function restartForgets(transport) {
    const srv = new Server({ timeout: '3s' });
    await srv.start();
    const channel = uniqueChannel('/restart');
    const c = newCometD(srv.url, { backoffIncrement: 200, maxBackoff: 1000 },
                        transport);
    const got = [];
    const handshakes = [];

    c.addListener('/meta/handshake', (m) => {
        handshakes.push(m);
        if (m.successful) {
            c.batch(() => {
                c.subscribe(channel, (msg) => got.push(msg.data));
            });
        }
    });

    try {
        const up = cometdConnected(c);
        await cometdHandshake(c);
        await up;
        await until(() => c.connectLog.replies.some((m) =>
            m.channel === '/meta/subscribe' && m.successful),
                    5000, 'the subscription');
        const firstId = c.getClientId();

        await cometdPublish(c, channel, { before: true });
        await until(() => got.length === 1, 5000, 'the first message');

        // nginx down and up on the same port: the memory engine forgets
        await srv.restart('SIGTERM');

        const ok = () => handshakes.filter((m) => m.successful);
        await until(() => ok().length === 2 && c.getStatus() === 'connected',
                    15000, 'the re-handshake');
        assert.notEqual(c.getClientId(), firstId);
        assert.equal(ok()[1].reestablish, true);

        // the server said: session unknown, handshake again
        const unknown = c.connectLog.replies.find((m) =>
            m.channel === '/meta/connect' && !m.successful);
        assert.ok(unknown, 'a /meta/connect reply with an error');
        assert.match(unknown.error, /^402:/);
        assert.equal(unknown.advice.reconnect, 'handshake');

        await until(() => c.connectLog.replies.filter((m) =>
            m.channel === '/meta/subscribe' && m.successful).length === 2,
                    5000, 'the new subscription');

        // and it receives again, from someone else too
        const other = newCometD(srv.url, {}, transport);
        await cometdHandshake(other);
        await cometdPublish(other, channel, { after: true });
        await until(() => got.length === 2, 5000, 'the message after');
        assert.deepEqual(got, [{ before: true }, { after: true }]);
        await cometdDisconnect(other);
        await cometdDisconnect(c);
        assertHeldWithinAdvice(c.connectLog);
        assert.deepEqual([...c.connectLog.connectionTypes], [transport]);
        srv.assertCleanLog();
    } finally {
        await srv.close();
    }
}

// The redis engine keeps sessions, subscriptions and queues in Redis:
// nginx stopped (SIGTERM) and started again is, to the client, a failed
// /meta/connect or two.  It goes on with the same clientId, without a 402
// or a second handshake, its subscription still in place, and receives
// what was published while nginx was down: here through a second nginx on
// the same Redis and prefix (the same Bayeux server), as another host of
// a cluster would take publishes.
async function restartKeeps(transport) {
    const options = { timeout: '3s', ...await engineOptions('redis') };
    const srv = new Server(options);
    const twin = new Server({ ...options, prefix: srv.options.prefix });
    const channel = uniqueChannel('/restart');
    const got = [];
    const handshakes = [];
    let c = null;
    let p = null;

    try {
        await srv.start();
        await twin.start();
        c = newCometD(srv.url, { backoffIncrement: 200, maxBackoff: 1000 },
                      transport);
        p = newCometD(twin.url, {}, transport);
        c.addListener('/meta/handshake', (m) => {
            handshakes.push(m);
            if (m.successful) {
                c.batch(() => {
                    c.subscribe(channel, (msg) => got.push(msg.data));
                });
            }
        });

        const up = cometdConnected(c);
        await cometdHandshake(c);
        await up;
        await until(() => c.connectLog.replies.some((m) =>
            m.channel === '/meta/subscribe' && m.successful),
                    5000, 'the subscription');
        const firstId = c.getClientId();
        await cometdHandshake(p);

        await cometdPublish(p, channel, { before: true });
        await until(() => got.length === 1, 5000, 'the first message');

        // a /meta/connect is held when nginx stops
        await new Promise((r) => setTimeout(r, 300));
        await srv.stop('SIGTERM');
        for (let i = 1; i <= 3; i++) {
            await cometdPublish(p, channel, { down: i });
        }
        await until(() => c.connectFailures.length >= 1, 5000,
                    'the client to notice');
        await srv.start();

        await until(() => got.length === 4, 15000,
                    'the messages published while nginx was down');
        assert.deepEqual(got, [{ before: true },
                               { down: 1 }, { down: 2 }, { down: 3 }]);
        await until(() => c.getStatus() === 'connected', 5000, 'connected');
        assert.equal(c.getClientId(), firstId, 'the same session');
        assert.equal(handshakes.length, 1, 'no second handshake');
        assert.deepEqual(c.connectLog.replies.filter((m) =>
            m.successful === false), [], 'no error reply (no 402)');

        await cometdPublish(p, channel, { after: true });
        await until(() => got.length === 5, 5000, 'the message after');
        assert.deepEqual(got.at(-1), { after: true });
        assert.equal(c.connectLog.replies.filter((m) =>
            m.channel === '/meta/subscribe').length, 1,
                     'subscribed once, the subscription kept');

        await cometdDisconnect(p);
        await cometdDisconnect(c);
        assertHeldWithinAdvice(c.connectLog);
        assert.deepEqual([...c.connectLog.connectionTypes], [transport]);
        srv.assertCleanLog();
        twin.assertCleanLog();
    } finally {
        for (const x of [p, c].filter(Boolean)) {
            await cometdDisconnect(x);
        }
        await srv.close();
        await twin.close();
    }
}

// A short timeout, and a client that gives up on a connect after
// advice.timeout + maxNetworkDelay: holding too long fails it.  One test
// per combination, all at once (each on its own server).
describe('CometD client: held /meta/connect never longer than '
         + 'advice.timeout', { timeout: 60000, concurrency: true }, () => {
    for (const combo of combos) {
        test(combo.name, { skip: combo.skip }, async () => {
            const srv = new Server({ timeout: '2s',
                                     ...await engineOptions(combo.engine) });
            await srv.start();
            const c = newCometD(srv.url, { maxNetworkDelay: 1000 },
                                combo.transport);
            const failures = [];
            c.addListener('/meta/unsuccessful', (m) => failures.push(m));

            try {
                const up = cometdConnected(c);
                await cometdHandshake(c);
                await up;
                await until(() => c.connectLog.held.length >= 4, 12000,
                            'three held connects');

                const log = c.connectLog;
                assert.equal(log.advice.timeout, 2000);
                const idle = log.held.slice(1);     // the first is not held
                assert.ok(log.held[0].ms < 1000,
                          'the first connect returns at once');
                for (const h of idle) {
                    assert.equal(h.successful, true);
                    assert.ok(h.ms <= h.timeout + HOLD_SLACK_MS,
                              `held ${h.ms.toFixed(0)} ms > ${h.timeout} ms`);
                    assert.ok(h.ms >= h.timeout - 100,
                              `held only ${h.ms.toFixed(0)} ms `
                              + `of ${h.timeout} ms`);
                }
                assert.deepEqual(failures, []);
                assert.deepEqual([...log.connectionTypes], [combo.transport]);
                assert.equal(c.getTransport().type, combo.transport);
                await cometdDisconnect(c);
                srv.assertCleanLog();
            } finally {
                await cometdDisconnect(c);
                await srv.close();
            }
        });
    }
});
