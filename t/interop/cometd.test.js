// The official CometD JavaScript client (npm cometd, on Node through
// cometd-nodejs-client) against ngx_bayeux_module, long-polling only.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdPublish,
    cometdSubscribe, cometdUnsubscribe, newCometD, uniqueChannel, until,
} from './lib/clients.js';
import {
    HOLD_SLACK_MS, assertHeldWithinAdvice, exchange, rawConnect,
} from './lib/scenarios.js';

const server = new Server({ timeout: '5s', maxInterval: '10s' });
const clients = [];

function client(config) {
    const c = newCometD(server.url, config);
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
    await server.start();
});

after(async () => {
    await Promise.all(clients.map((c) => cometdDisconnect(c)));
    try {
        for (const c of clients) {
            assertHeldWithinAdvice(c.connectLog);
        }
        server.assertCleanLog();
    } finally {
        await server.close();
    }
});

describe('CometD client', { timeout: 180000 }, () => {

    test('handshake over long-polling only', async () => {
        const c = client();
        assert.deepEqual(c.getTransportTypes(), ['long-polling']);

        const up = cometdConnected(c);
        const reply = await cometdHandshake(c);
        assert.equal(reply.successful, true);
        assert.equal(reply.channel, '/meta/handshake');
        assert.match(reply.clientId, /^[0-9A-Za-z_-]{20,}$/,
                     'clientId of at least 20 characters');
        assert.ok(reply.supportedConnectionTypes.includes('long-polling'));
        assert.equal(c.getTransport().type, 'long-polling');

        const connect = await up;
        assert.equal(connect.successful, true);
        await until(() => c.getStatus() === 'connected', 2000, 'connected');
        assert.equal(c.getClientId(), reply.clientId);

        // CometD posts to <url>/handshake, then <url>/connect
        assert.equal(c.requests[0].url, server.url + '/handshake');
        assert.equal(c.requests[1].url, server.url + '/connect');
        assert.deepEqual([...c.connectLog.connectionTypes], ['long-polling']);
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

        await cometdSubscribe(sub, base + '/*', (m) => one.push(m.channel));
        await cometdSubscribe(sub, base + '/**', (m) => all.push(m.channel));

        for (const ch of [base + '/a', base + '/a/b', base + '/b',
                          base + '/a/b/c', base]) {
            await cometdPublish(pub, ch, { ch });
        }
        await cometdPublish(pub, base + '/end', {});

        await until(() => all.includes(base + '/end'), 10000, 'the last one');
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
            c.subscribe(channel, (m) => got.push(m), (r) => { subscribed = r; });
            c.publish(channel, { n: 1 }, (r) => { published = r; });
        });

        await until(() => got.length === 1 && subscribed && published,
                    10000, 'the batch to complete');
        assert.equal(subscribed.successful, true);
        assert.equal(published.successful, true);
        assert.deepEqual(got[0].data, { n: 1 });

        // one request carried both, subscribe first
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

        const s = await cometdSubscribe(sub, channel, (m) => got.push(m.data));
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

        const ext = { trace: 'abc-123', nested: { list: [1, 'two', null] } };
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

    test('10,000 messages between two processes, in order', {
        timeout: 120000,
    }, async () => {
        const r = await exchange('cometd', 'cometd', server.url, 10000);
        for (const p of r) {
            assert.equal(p.received, 10000, `${p.name} received all`);
            assert.equal(p.disorder, null, `${p.name} in order`);
            assert.equal(p.overheld, 0, `${p.name}: connects within advice`);
            assert.deepEqual(p.connectionTypes, ['long-polling']);
        }
    });
});

describe('CometD client, own servers', { timeout: 180000 }, () => {

    test('server restarted under a connected client', async () => {
        const srv = new Server({ timeout: '3s' });
        await srv.start();
        const channel = uniqueChannel('/restart');
        const c = newCometD(srv.url, { backoffIncrement: 200, maxBackoff: 1000 });
        const got = [];
        const handshakes = [];

        // the CometD way: (re)subscribe whenever a handshake succeeds
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
            const other = newCometD(srv.url);
            await cometdHandshake(other);
            await cometdPublish(other, channel, { after: true });
            await until(() => got.length === 2, 5000, 'the message after');
            assert.deepEqual(got, [{ before: true }, { after: true }]);
            await cometdDisconnect(other);
            await cometdDisconnect(c);
            assertHeldWithinAdvice(c.connectLog);
            srv.assertCleanLog();
        } finally {
            await srv.close();
        }
    });

    test('held /meta/connect never longer than advice.timeout', async () => {
        // a short timeout, and a client that gives up on a connect after
        // advice.timeout + maxNetworkDelay: holding too long fails it
        const srv = new Server({ timeout: '2s' });
        await srv.start();
        const c = newCometD(srv.url, { maxNetworkDelay: 1000 });
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
            const idle = log.held.slice(1);         // the first is not held
            assert.ok(log.held[0].ms < 1000, 'the first connect returns at once');
            for (const h of idle) {
                assert.equal(h.successful, true);
                assert.ok(h.ms <= h.timeout + HOLD_SLACK_MS,
                          `held ${h.ms.toFixed(0)} ms > ${h.timeout} ms`);
                assert.ok(h.ms >= h.timeout - 100,
                          `held only ${h.ms.toFixed(0)} ms of ${h.timeout} ms`);
            }
            assert.deepEqual(failures, []);
            await cometdDisconnect(c);
            srv.assertCleanLog();
        } finally {
            await srv.close();
        }
    });
});
