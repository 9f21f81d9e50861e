// Faye's own Node client (npm faye) against ngx_bayeux_module,
// long-polling only.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    fayeConnected, fayeDisconnect, fayePublish, fayeSubscribe, newFaye,
    uniqueChannel, until,
} from './lib/clients.js';
import {
    HOLD_SLACK_MS, assertHeldWithinAdvice, exchange, rawConnect,
} from './lib/scenarios.js';

const server = new Server({ timeout: '5s', maxInterval: '10s' });
const clients = [];

function client(options) {
    const c = newFaye(server.url, options);
    clients.push(c);
    return c;
}

// Resolves to an array of n connected clients.  (A Faye.Client is a
// thenable, so it cannot be what a promise resolves to.)
async function connected(n = 1, options = {}) {
    const list = Array.from({ length: n }, () => client(options));
    await Promise.all(list.map((c) => fayeConnected(c)));
    return list;
}

function replies(c, channel) {
    return c.connectLog.replies.filter((m) => m.channel === channel);
}

before(async () => {
    await server.start();
});

after(async () => {
    await Promise.all(clients.map((c) => fayeDisconnect(c).catch(() => {})));
    try {
        for (const c of clients) {
            assertHeldWithinAdvice(c.connectLog);
        }
        server.assertCleanLog();
    } finally {
        await server.close();
    }
});

describe('Faye client', { timeout: 180000 }, () => {

    test('handshake over long-polling only', async () => {
        const c = client();
        const connect = await fayeConnected(c);
        assert.equal(connect.successful, true);

        const [hs] = replies(c, '/meta/handshake');
        assert.equal(hs.successful, true);
        assert.match(hs.clientId, /^[0-9A-Za-z_-]{20,}$/);
        assert.ok(hs.supportedConnectionTypes.includes('long-polling'));
        assert.equal(c._dispatcher.connectionType, 'long-polling');
        assert.equal(c.getClientId ? c.getClientId() : c._dispatcher.clientId,
                     hs.clientId);

        // Faye posts everything to the endpoint itself
        assert.ok(c.requests.length >= 2);
        for (const r of c.requests) {
            assert.equal(r.url, server.url);
        }
        assert.equal(c.requests[0].messages[0].channel, '/meta/handshake');
        assert.deepEqual([...c.connectLog.connectionTypes], ['long-polling']);
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

        await until(() => all.includes(base + '/end'), 10000, 'the last one');
        assert.deepEqual(one, [base + '/a', base + '/b', base + '/end']);
        assert.deepEqual(all, [base + '/a', base + '/a/b', base + '/b',
                               base + '/a/b/c', base + '/end']);
    });

    test('subscribe and publish in one request', async () => {
        // Faye sends what is queued in one tick as one request
        const channel = uniqueChannel('/batch');
        const [c] = await connected();
        const got = [];

        const before = c.requests.length;
        const s = c.subscribe(channel, (data) => got.push(data));
        const p = c.publish(channel, { n: 1 });
        await Promise.all([s, p]);

        await until(() => got.length === 1, 10000, 'the message');
        assert.deepEqual(got, [{ n: 1 }]);

        const batch = c.requests.slice(before).filter((r) =>
            r.messages.some((m) => m.channel === channel));
        assert.equal(batch.length, 1);
        // (Faye may put its next /meta/connect in the same request)
        assert.deepEqual(batch[0].messages.map((m) => m.channel)
            .filter((ch) => ch !== '/meta/connect'),
                         ['/meta/subscribe', channel]);
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
        const ext = { trace: 'abc-123', nested: { list: [1, 'two', null] } };

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

        // the held connect was released
        await until(() => c.connectLog.pending.size === 0, 2000,
                    'the held /meta/connect to return');

        const raw = await rawConnect(server.url, clientId);
        assert.equal(raw.successful, false);
        assert.match(raw.error, /^402:/);

        await fayePublish(pub, channel, { late: true });
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(got, []);
    });

    test('10,000 messages between two processes, in order', {
        timeout: 120000,
    }, async () => {
        const r = await exchange('faye', 'faye', server.url, 10000);
        for (const p of r) {
            assert.equal(p.received, 10000, `${p.name} received all`);
            assert.equal(p.disorder, null, `${p.name} in order`);
            assert.equal(p.failed, null, `${p.name}: no publish failed`);
            assert.equal(p.overheld, 0, `${p.name}: connects within advice`);
            assert.deepEqual(p.connectionTypes, ['long-polling']);
        }
    });
});

describe('Faye client, own servers', { timeout: 180000 }, () => {

    test('server restarted under a connected client', async () => {
        const srv = new Server({ timeout: '3s' });
        await srv.start();
        const channel = uniqueChannel('/restart');
        const c = newFaye(srv.url, { retry: 0.2 });
        const got = [];

        try {
            await fayeConnected(c);
            await fayeSubscribe(c, channel, (d) => got.push(d));
            const firstId = c._dispatcher.clientId;

            await fayePublish(c, channel, { before: true });
            await until(() => got.length === 1, 5000, 'the first message');

            await srv.restart('SIGTERM');

            // Faye handshakes again on 402 and resubscribes by itself
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

            const other = newFaye(srv.url);
            await fayeConnected(other);
            await fayePublish(other, channel, { after: true });
            await until(() => got.length === 2, 5000, 'the message after');
            assert.deepEqual(got, [{ before: true }, { after: true }]);
            await fayeDisconnect(other);
            await fayeDisconnect(c);
            assertHeldWithinAdvice(c.connectLog);
            srv.assertCleanLog();
        } finally {
            await srv.close();
        }
    });

    test('held /meta/connect never longer than advice.timeout', async () => {
        // Faye gives up on any request after 1.2 * advice.timeout
        const srv = new Server({ timeout: '2s' });
        await srv.start();
        const c = newFaye(srv.url);
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
                          `held only ${h.ms.toFixed(0)} ms of ${h.timeout} ms`);
            }
            assert.deepEqual(failures, []);
            // no request was retried for want of a reply
            const connects = c.requests.flatMap((r) => r.messages)
                .filter((m) => m.channel === '/meta/connect').map((m) => m.id);
            assert.equal(new Set(connects).size, connects.length);
            await fayeDisconnect(c);
            srv.assertCleanLog();
        } finally {
            await srv.close();
        }
    });
});
