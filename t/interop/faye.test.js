// Faye's own Node client (npm faye) against ngx_bayeux_module: every
// scenario over long-polling and over websocket, each on the memory engine
// (1 worker) and the redis engine (2 workers).  Faye sends its handshakes
// over HTTP and then upgrades: over websocket, the tests check that
// nothing but handshakes went over HTTP and that the server answered
// websocket upgrades.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    FAYE_TRANSPORTS, fayeConnected, fayeDisconnect,
    fayeHttpBesidesHandshakes, fayePublish, fayeSubscribe, newFaye,
    uniqueChannel, until,
} from './lib/clients.js';
import {
    HOLD_SLACK_MS, assertHeldWithinAdvice, exchange, rawConnect,
    withServerLog,
} from './lib/scenarios.js';
import {
    EXCHANGE_QUEUE, count, engineOptions, matrix, requestsSeen, stopRedis,
} from './lib/matrix.js';

const combos = matrix(FAYE_TRANSPORTS);

after(stopRedis);

function replies(c, channel) {
    return c.connectLog.replies.filter((m) => m.channel === channel);
}

// The client used its transport and nothing else: every /meta/connect
// said so, and over websocket nothing but handshakes went over HTTP.  One
// exception, Faye's own: while its websocket is not open yet (a machine
// under load) it may connect over long-polling first, then moves to the
// websocket for good.
function assertClientTransport(c, transport) {
    const types = [...c.connectLog.connectionTypes];
    if (transport === 'websocket'
        && types.length === 2 && types[0] === 'long-polling')
    {
        assert.equal(types[1], 'websocket', 'on the websocket in the end');
        return;
    }
    assert.deepEqual(types, [transport]);
    if (transport === 'websocket') {
        assert.deepEqual(fayeHttpBesidesHandshakes(c), [],
                         'HTTP requests besides handshakes');
    } else {
        for (const r of c.requests) {
            assert.match(r.url, /^http:/);
        }
    }
}

// What the server saw: POSTs only, or POSTs (the handshakes) and
// websocket upgrades.
function assertOnlyTransport(server, transport) {
    const seen = requestsSeen(server);
    assert.deepEqual(seen.other, [], 'unexpected requests');
    assert.equal(seen.get, 0, 'GET (JSONP) requests');
    assert.ok(seen.post > 0, 'POST requests');
    if (transport === 'websocket') {
        assert.ok(seen.upgrades > 0, 'websocket upgrades');
    } else {
        assert.equal(seen.upgrades, 0, 'websocket upgrades');
    }
}

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`Faye client, ${combo.name}`, {
        timeout: 180000,
        skip: combo.skip,
    }, () => {
        let server;
        const clients = [];

        function client(options) {
            const c = newFaye(server.url, options, transport);
            clients.push(c);
            return c;
        }

        // Resolves to an array of n connected clients.  (A Faye.Client is
        // a thenable, so it cannot be what a promise resolves to.)
        async function connected(n = 1, options = {}) {
            const list = Array.from({ length: n }, () => client(options));
            await Promise.all(list.map((c) => fayeConnected(c)));
            return list;
        }

        before(async () => {
            server = new Server({ timeout: '5s', maxInterval: '10s',
                                  location: EXCHANGE_QUEUE,
                                  ...await engineOptions(engine) });
            await server.start();
        });

        after(async () => {
            await Promise.all(clients.map((c) =>
                fayeDisconnect(c).catch(() => {})));
            try {
                for (const c of clients) {
                    assertHeldWithinAdvice(c.connectLog);
                    assertClientTransport(c, transport);
                }
                if (clients.length) {
                    // every client opened a websocket of its own; nginx
                    // logs one when it is closed
                    if (transport === 'websocket') {
                        await until(() => requestsSeen(server).upgrades
                                          >= clients.length, 2000,
                                    'a websocket upgrade per client');
                    }
                    assertOnlyTransport(server, transport);
                }
                server.assertCleanLog();
            } finally {
                await server.close();
            }
        });

        test(`handshake over HTTP, then ${transport} only`, async () => {
            const c = client();
            const connect = await fayeConnected(c);
            assert.equal(connect.successful, true);

            const [hs] = replies(c, '/meta/handshake');
            assert.equal(hs.successful, true);
            assert.match(hs.clientId, /^[0-9A-Za-z_-]{20,}$/);
            assert.ok(hs.supportedConnectionTypes.includes(transport));
            assert.equal(c._dispatcher.connectionType, transport);
            assert.equal(c._dispatcher._transport.connectionType, transport);
            assert.equal(c._dispatcher.clientId, hs.clientId);

            // Faye posts its handshake to the endpoint itself ...
            assert.ok(c.requests.length >= 2);
            assert.equal(c.requests[0].url, server.url);
            assert.equal(c.requests[0].messages[0].channel, '/meta/handshake');
            // ... and the rest too, or sends it over a websocket there
            const rest = transport === 'websocket'
                ? server.url.replace(/^http/, 'ws') : server.url;
            for (const r of c.requests.slice(1)) {
                assert.equal(r.url, rest);
            }
            assertClientTransport(c, transport);
        });

        test('subscribe, publish from a second client, receive', async () => {
            const channel = uniqueChannel('/chat');
            const [a, b] = await connected(2);
            const got = [];

            await fayeSubscribe(a, channel, (data) => got.push(data));
            await fayePublish(b, channel, { text: 'hello' });

            await until(() => got.length >= 1, 10000, 'the message');
            assert.deepEqual(got, [{ text: 'hello' }]);
        });

        test('wildcard subscriptions: * and **', async () => {
            const base = uniqueChannel('/wild');
            const [sub, pub] = await connected(2);
            const one = [];
            const all = [];

            await fayeSubscribe(sub, base + '/*', null).then((s) =>
                s.withChannel((ch) => one.push(ch)));
            await fayeSubscribe(sub, base + '/**', null).then((s) =>
                s.withChannel((ch) => all.push(ch)));

            for (const ch of [base + '/a', base + '/a/b', base + '/b',
                              base + '/a/b/c', base]) {
                await fayePublish(pub, ch, { ch });
            }
            await fayePublish(pub, base + '/end', {});

            await until(() => all.includes(base + '/end'), 10000,
                        'the last one');
            assert.deepEqual(one, [base + '/a', base + '/b', base + '/end']);
            assert.deepEqual(all, [base + '/a', base + '/a/b', base + '/b',
                                   base + '/a/b/c', base + '/end']);
        });

        test('subscribe and publish sent together', async () => {
            // over HTTP Faye sends what is queued in one tick as one
            // request; over websocket, each message in a websocket message
            // of its own, in order, on one connection
            const channel = uniqueChannel('/batch');
            const [c] = await connected();
            const got = [];

            const before = c.requests.length;
            const s = c.subscribe(channel, (data) => got.push(data));
            const p = c.publish(channel, { n: 1 });
            await Promise.all([s, p]);

            await until(() => got.length === 1, 10000, 'the message');
            assert.deepEqual(got, [{ n: 1 }]);

            // (Faye may put its next /meta/connect in the same request)
            const sent = c.requests.slice(before).map((r) => r.messages
                .map((m) => m.channel)
                .filter((ch) => ch === channel || ch === '/meta/subscribe'))
                .filter((list) => list.length);
            if (transport === 'websocket') {
                assert.deepEqual(sent, [['/meta/subscribe'], [channel]]);
            } else {
                assert.deepEqual(sent, [['/meta/subscribe', channel]]);
            }
        });

        test('unsubscribe stops delivery', async () => {
            const channel = uniqueChannel('/unsub');
            const control = uniqueChannel('/control');
            const [sub, pub] = await connected(2);
            const got = [];
            const ctl = [];

            const s = await fayeSubscribe(sub, channel, (d) => got.push(d));
            await fayeSubscribe(sub, control, (d) => ctl.push(d));

            await fayePublish(pub, channel, { n: 1 });
            await until(() => got.length === 1, 10000, 'the first message');

            s.cancel();
            await until(() => replies(sub, '/meta/unsubscribe').length === 1,
                        5000, 'the unsubscribe reply');
            const [reply] = replies(sub, '/meta/unsubscribe');
            assert.equal(reply.successful, true);
            assert.equal(reply.subscription, channel);

            await fayePublish(pub, channel, { n: 2 });
            await fayePublish(pub, control, { n: 3 });
            await until(() => ctl.length === 1, 10000, 'the control message');
            await new Promise((r) => setTimeout(r, 200));
            assert.deepEqual(got, [{ n: 1 }]);
        });

        test('message id and ext round trip', async () => {
            const channel = uniqueChannel('/ids');
            const [sub, pub] = await connected(2);
            const got = [];
            const sent = [];
            const ext = { trace: 'abc-123',
                          nested: { list: [1, 'two', null] } };

            // Faye's API for ext is an extension
            pub.addExtension({
                outgoing(m, callback) {
                    if (m.channel === channel) {
                        m.ext = ext;
                        sent.push(structuredClone(m));
                    }
                    callback(m);
                },
            });
            sub.addExtension({
                incoming(m, callback) {
                    if (m.channel === channel) {
                        got.push(structuredClone(m));
                    }
                    callback(m);
                },
            });
            await fayeSubscribe(sub, channel, () => {});
            await fayePublish(pub, channel, { v: 1 });
            await until(() => got.length === 1, 10000, 'the message');

            assert.equal(sent.length, 1);
            assert.equal(got[0].id, sent[0].id, 'the publisher\'s message id');
            assert.deepEqual(got[0].ext, ext);
            assert.deepEqual(got[0].data, { v: 1 });
        });

        test('disconnect', async () => {
            const channel = uniqueChannel('/bye');
            const [c, pub] = await connected(2);
            const got = [];
            await fayeSubscribe(c, channel, (d) => got.push(d));
            const clientId = c._dispatcher.clientId;

            await new Promise((r) => setTimeout(r, 200));
            const t0 = Date.now();
            await fayeDisconnect(c);
            const took = Date.now() - t0;
            assert.ok(took < 2000, `disconnect took ${took} ms`);

            const [reply] = replies(c, '/meta/disconnect');
            assert.equal(reply.successful, true);

            // the held connect was released (over websocket with Redis,
            // see the TODO test below)
            if (!(transport === 'websocket' && engine === 'redis')) {
                await until(() => c.connectLog.pending.size === 0, 2000,
                            'the held /meta/connect to return');
            }

            const raw = await rawConnect(server.url, clientId);
            assert.equal(raw.successful, false);
            assert.match(raw.error, /^402:/);

            await fayePublish(pub, channel, { late: true });
            await new Promise((r) => setTimeout(r, 200));
            assert.deepEqual(got, []);
        });

        if (transport === 'websocket') {
            // Faye closes its websocket as soon as the /meta/disconnect
            // reply comes: it sees the reply to its held /meta/connect
            // only if that comes first, on the same websocket: on either
            // engine the websocket transport answers the connect held on
            // the socket before it sends the disconnect reply.
            test('disconnect over websocket: the held /meta/connect is '
                 + 'answered before the /meta/disconnect', async () => {
                const [c] = await connected();
                await new Promise((r) => setTimeout(r, 200));
                const [held] = c.connectLog.pending.keys();
                assert.ok(held, 'a /meta/connect is held');
                await fayeDisconnect(c);
                await until(() => c.connectLog.pending.size === 0, 1000,
                            'the held /meta/connect to return');
                assert.ok(c.connectLog.held.some((h) =>
                    String(h.id) === held));
            });
        }

        test(`${count(combo.messages)} messages between two processes, `
             + 'in order', { timeout: 120000 }, async () => {
            const n = combo.messages;
            const r = await withServerLog(server, exchange(
                'faye', 'faye', server.url, n, 100000,
                [transport, transport]));
            for (const p of r) {
                assert.equal(p.received, n, `${p.name} received all`);
                assert.equal(p.disorder, null, `${p.name} in order`);
                assert.equal(p.failed, null, `${p.name}: no publish failed`);
                assert.equal(p.overheld, 0,
                             `${p.name}: connects within advice`);
                assert.deepEqual(p.connectionTypes, [transport]);
                assert.equal(p.transportUsed, transport);
                assert.equal(p.httpBesidesHandshakes, 0);
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

// The memory engine forgets every session when nginx stops: Faye is told
// 402::session_unknown, handshakes again and resubscribes by itself.
async function restartForgets(transport) {
    const srv = new Server({ timeout: '3s' });
    await srv.start();
    const channel = uniqueChannel('/restart');
    const c = newFaye(srv.url, { retry: 0.2 }, transport);
    const got = [];

    try {
        await fayeConnected(c);
        await fayeSubscribe(c, channel, (d) => got.push(d));
        const firstId = c._dispatcher.clientId;

        await fayePublish(c, channel, { before: true });
        await until(() => got.length === 1, 5000, 'the first message');

        const connectsBefore = c.connectLog.connects.length;
        await srv.restart('SIGTERM');

        await until(() => replies(c, '/meta/subscribe')
            .filter((m) => m.successful).length === 2,
                    15000, 'the re-handshake and resubscribe');
        assert.notEqual(c._dispatcher.clientId, firstId);

        const unknown = replies(c, '/meta/connect')
            .find((m) => !m.successful);
        assert.ok(unknown, 'a /meta/connect reply with an error');
        assert.match(unknown.error, /^402:/);
        assert.equal(unknown.advice.reconnect, 'handshake');
        assert.equal(replies(c, '/meta/handshake')
            .filter((m) => m.successful).length, 2);

        const other = newFaye(srv.url, {}, transport);
        await fayeConnected(other);
        await fayePublish(other, channel, { after: true });
        await until(() => got.length === 2, 5000, 'the message after');
        assert.deepEqual(got, [{ before: true }, { after: true }]);
        if (transport === 'websocket') {
            // Faye handshakes again over HTTP, and sends its connects over
            // long-polling until its websocket is open again; then it is
            // back on websocket
            await until(() => c.connectLog.connects.at(-1) === 'websocket'
                              && c._dispatcher.connectionType === 'websocket',
                        10000, 'the client to be back on websocket');
            assert.deepEqual(
                [...new Set(c.connectLog.connects.slice(0, connectsBefore))],
                ['websocket'], 'connects before the restart');
            assert.ok(c.wsCloses.length >= 1, 'the websocket was closed');
        } else {
            assertClientTransport(c, transport);
        }

        await fayeDisconnect(other);
        await fayeDisconnect(c);
        assertHeldWithinAdvice(c.connectLog);
        if (transport === 'websocket') {
            await new Promise((r) => setTimeout(r, 200));
            assert.ok(requestsSeen(srv).upgrades >= 2,
                      'websocket upgrades before and after the restart');
        }
        srv.assertCleanLog();
    } finally {
        await srv.close();
    }
}

// The redis engine keeps sessions, subscriptions and queues in Redis:
// nginx stopped (SIGTERM) and started again is, to the client, a failed
// /meta/connect or two.  It goes on with the same clientId, without a 402
// or a second handshake, its subscription in place, and receives what was
// published while nginx was down (through a second nginx on the same
// Redis and prefix: the same Bayeux server, as another host of a cluster).
async function restartKeeps(transport) {
    const options = { timeout: '3s', ...await engineOptions('redis') };
    const srv = new Server(options);
    const twin = new Server({ ...options, prefix: srv.options.prefix });
    const channel = uniqueChannel('/restart');
    const got = [];
    let c = null;
    let p = null;

    try {
        await srv.start();
        await twin.start();
        c = newFaye(srv.url, { retry: 0.2 }, transport);
        p = newFaye(twin.url, {}, transport);
        await fayeConnected(c);
        await fayeSubscribe(c, channel, (d) => got.push(d));
        const firstId = c._dispatcher.clientId;
        await fayeConnected(p);

        await fayePublish(p, channel, { before: true });
        await until(() => got.length === 1, 5000, 'the first message');

        // a /meta/connect is held when nginx stops
        await new Promise((r) => setTimeout(r, 300));
        const held = c.connectLog.held.length;
        await srv.stop('SIGTERM');
        for (let i = 1; i <= 3; i++) {
            await fayePublish(p, channel, { down: i });
        }
        await srv.start();

        await until(() => got.length === 4, 15000,
                    'the messages published while nginx was down');
        assert.deepEqual(got, [{ before: true },
                               { down: 1 }, { down: 2 }, { down: 3 }]);
        assert.equal(c._dispatcher.clientId, firstId, 'the same session');
        assert.equal(replies(c, '/meta/handshake').length, 1,
                     'no second handshake');
        assert.deepEqual(c.connectLog.replies.filter((m) =>
            m.successful === false), [], 'no error reply (no 402)');
        assert.equal(replies(c, '/meta/subscribe').length, 1,
                     'subscribed once, the subscription kept');
        assert.ok(c.connectLog.held.length > held,
                  'connected again after the restart');

        await fayePublish(p, channel, { after: true });
        await until(() => got.length === 5, 5000, 'the message after');
        assert.deepEqual(got.at(-1), { after: true });

        await fayeDisconnect(p);
        await fayeDisconnect(c);
        assertHeldWithinAdvice(c.connectLog);
        assertClientTransport(c, transport);
        srv.assertCleanLog();
        twin.assertCleanLog();
    } finally {
        for (const x of [p, c].filter(Boolean)) {
            await fayeDisconnect(x).catch(() => {});
        }
        await srv.close();
        await twin.close();
    }
}

// Faye gives up on any request after 1.2 * advice.timeout.  One test per
// combination, all at once (each on its own server).
describe('Faye client: held /meta/connect never longer than advice.timeout',
         { timeout: 60000, concurrency: true }, () => {
    for (const combo of combos) {
        test(combo.name, { skip: combo.skip }, async () => {
            const srv = new Server({ timeout: '2s',
                                     ...await engineOptions(combo.engine) });
            await srv.start();
            const c = newFaye(srv.url, {}, combo.transport);
            const failures = [];
            c.addExtension({
                incoming(m, callback) {
                    if (m.successful === false) {
                        failures.push(m);
                    }
                    callback(m);
                },
            });

            try {
                await fayeConnected(c);
                await until(() => c.connectLog.held.length >= 4, 12000,
                            'three held connects');

                const log = c.connectLog;
                assert.equal(log.advice.timeout, 2000);
                for (const h of log.held.slice(1)) {
                    assert.equal(h.successful, true);
                    assert.ok(h.ms <= h.timeout + HOLD_SLACK_MS,
                              `held ${h.ms.toFixed(0)} ms > ${h.timeout} ms`);
                    assert.ok(h.ms >= h.timeout - 100,
                              `held only ${h.ms.toFixed(0)} ms `
                              + `of ${h.timeout} ms`);
                }
                assert.deepEqual(failures, []);
                // no request was retried for want of a reply
                const connects = c.requests.flatMap((r) => r.messages)
                    .filter((m) => m.channel === '/meta/connect')
                    .map((m) => m.id);
                assert.equal(new Set(connects).size, connects.length);
                assertClientTransport(c, combo.transport);
                await fayeDisconnect(c);
                srv.assertCleanLog();
            } finally {
                await fayeDisconnect(c).catch(() => {});
                await srv.close();
            }
        });
    }
});
