// The application speaks (issue #13), seen from the official CometD
// JavaScript client: remote calls (remoteCall(), /service messages that
// bayeux_service_request sends to the application) answered, failed and
// timed out; and a backend publishing through the bayeux_publisher
// location with fetch(): to every session of a user, and an array of
// messages in order.  Remote calls over websocket and long-polling (one
// registered at a time), on the memory engine and on the Redis engine
// with 2 workers; the publisher on both engines, the user's two sessions
// one websocket and one long-polling.
//
// The application is a real HTTP server in this process (lib/app.js),
// behind an internal location that proxy_pass'es to it:
//
//   /_app/handshake  200 {"user": ext.auth.user, "subscribe": ["/**"],
//                    "publish": ["/**"]}
//   /_app/service    /service/add: 200 {"sum": data[0] + data[1]}
//                    /service/slow: the same, SLOW_MS later
//                    anything else: 404 {"message": "no such method"}
//
// The remote call that times out: the client gives it CALL_TIMEOUT_MS,
// the application answers after SLOW_MS, and nginx waits for it
// (proxy_read_timeout 5s), so its reply reaches the client after the
// client has given up on it.

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { App } from './lib/app.js';
import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdSubscribe,
    newCometD, uniqueChannel, until,
} from './lib/clients.js';
import { ENGINES, engineOptions, matrix, stopRedis } from './lib/matrix.js';

const combos = matrix(['websocket', 'long-polling']);

const CALL_TIMEOUT_MS = 500;
const SLOW_MS = 1500;

function answer(req) {
    const m = req.json || {};
    switch (req.path) {
    case '/_app/handshake': {
        const auth = (m.ext && m.ext.auth) || {};
        if (typeof auth.user !== 'string') {
            return { status: 403 };
        }
        return { json: { user: auth.user, subscribe: ['/**'],
                         publish: ['/**'] } };
    }
    case '/_app/service':
        if (m.channel === '/service/add' && Array.isArray(m.data)) {
            return { json: { sum: m.data[0] + m.data[1] } };
        }
        if (m.channel === '/service/slow') {
            return sleep(SLOW_MS).then(() => ({
                json: { late: true, sum: m.data[0] + m.data[1] } }));
        }
        return { status: 404, json: { message: 'no such method' } };
    default:
        return { status: 404 };
    }
}

after(stopRedis);

// The application, and nginx asking it and taking publishes from
// backends at /publish: { app, server }, started.
async function start(engine) {
    const app = await new App(answer).start();
    const server = new Server({
        timeout: '5s',
        maxInterval: '10s',
        ...await engineOptions(engine),
        location: `
            bayeux_handshake_request /_app/handshake;
            bayeux_service_request /_app/service;`,
        server: `
        location /_app/ {
            internal;
            proxy_pass http://127.0.0.1:${app.port};
            proxy_read_timeout 5s;
        }
        location = /publish {
            bayeux_publisher /cometd;
        }`,
    });
    try {
        await server.start();
    } catch (err) {
        await app.close();
        throw err;
    }
    return { app, server };
}

// A remote call: resolves to the message its callback got, with
// { calls: how many times the callback was called, ms: after how long }.
function remoteCall(c, target, content, timeout) {
    return new Promise((resolve) => {
        const t0 = performance.now();
        let calls = 0;
        let first;
        c.remoteCall(target, content, timeout, (reply) => {
            calls += 1;
            if (calls === 1) {
                first = { reply, ms: performance.now() - t0 };
                resolve(first);
            }
            first.calls = calls;
        });
    });
}

// POST to the publisher location, as a backend does: { status, json }.
async function publish(server, body) {
    const res = await fetch(`${server.origin}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = text;
    }
    return { status: res.status, json };
}

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`remote calls, CometD client, ${combo.name}`, {
        timeout: 120000,
        skip: combo.skip,
    }, () => {
        let app;
        let server;
        const clients = [];

        async function login(user) {
            const c = newCometD(server.url, {}, transport);
            clients.push(c);
            const up = cometdConnected(c);
            await cometdHandshake(c, { ext: { auth: { user } } });
            await up;
            return c;
        }

        before(async () => {
            ({ app, server } = await start(engine));
        });

        after(async () => {
            await Promise.all(clients.map((c) => cometdDisconnect(c)));
            try {
                for (const c of clients) {
                    assert.deepEqual([...c.connectLog.connectionTypes],
                                     [transport]);
                }
                server.assertCleanLog();
            } finally {
                await server.close();
                await app.close();
            }
        });

        beforeEach(() => {
            app.requests.length = 0;
        });

        test('remoteCall(): the application\'s answer is the reply\'s data',
             async () => {
            const c = await login('ann');
            app.requests.length = 0;

            const { reply } = await remoteCall(c, 'add', [40, 2], 5000);
            assert.equal(reply.successful, true);
            assert.equal(reply.channel, '/service/add');
            assert.deepEqual(reply.data, { sum: 42 });

            // the call as the client sent it is what the application got
            const sent = c.requests.flatMap((r) => r.messages)
                .filter((m) => m.channel === '/service/add');
            assert.equal(sent.length, 1);
            const got = app.on('/_app/service');
            assert.equal(got.length, 1);
            assert.equal(got[0].method, 'POST');
            assert.equal(got[0].json.channel, '/service/add');
            assert.equal(got[0].json.clientId, c.getClientId());
            assert.equal(String(got[0].json.id), String(sent[0].id));
            assert.deepEqual(got[0].json.data, [40, 2]);
            assert.equal(reply.id, sent[0].id);

            // several at once: each callback gets its own answer
            const many = await Promise.all([1, 2, 3, 4, 5].map(
                (i) => remoteCall(c, 'add', [i, 100], 5000)));
            assert.deepEqual(many.map((r) => r.reply.data),
                             [1, 2, 3, 4, 5].map((i) => ({ sum: 100 + i })));
            assert.ok(many.every((r) => r.calls === 1));
        });

        test('a 404 from the application: successful false, '
             + '404::not_found, its body as data', async () => {
            const c = await login('bob');

            const { reply } = await remoteCall(c, 'nosuch', { x: 1 }, 5000);
            assert.equal(reply.successful, false);
            assert.equal(reply.error, '404::not_found');
            assert.deepEqual(reply.data, { message: 'no such method' });
            assert.equal(reply.channel, '/service/nosuch');

            // and the session goes on
            const ok = await remoteCall(c, 'add', [1, 1], 5000);
            assert.equal(ok.reply.successful, true);
            assert.deepEqual(ok.reply.data, { sum: 2 });
            assert.equal(c.getStatus(), 'connected');
        });

        test('the application slower than the client\'s timeout: the '
             + 'callback reports 406::timeout once, the late reply breaks '
             + 'nothing', async () => {
            const c = await login('cid');
            // the late reply reaches the listeners of its channel (the
            // CometD client's way with a reply nobody waits for)
            const late = [];
            c.addListener('/service/slow', (m) => late.push(m));
            const failures = c.connectFailures.length;

            const call = await remoteCall(c, 'slow', [20, 22],
                                          CALL_TIMEOUT_MS);
            const { reply } = call;
            assert.equal(reply.successful, false);
            assert.equal(reply.error, '406::timeout');
            assert.equal(reply.failure.reason, 'Remote Call Timeout');
            assert.ok(call.ms >= CALL_TIMEOUT_MS - 50
                      && call.ms < SLOW_MS,
                      `timed out after ${Math.round(call.ms)} ms`);

            // nginx waited for the application and sent its answer
            await until(() => late.length >= 1, 10000, 'the late reply');
            assert.equal(late[0].successful, true);
            assert.deepEqual(late[0].data, { late: true, sum: 42 });
            assert.equal(late[0].id, reply.id);
            await sleep(200);
            assert.equal(call.calls, 1, 'the callback was called once');
            assert.equal(late.length, 1);
            assert.equal(app.on('/_app/service').length, 1);

            // the session is as it was: connected, no failure, calls work
            assert.equal(c.getStatus(), 'connected');
            assert.equal(c.connectFailures.length, failures);
            const ok = await remoteCall(c, 'add', [2, 3], 5000);
            assert.equal(ok.reply.successful, true);
            assert.deepEqual(ok.reply.data, { sum: 5 });
            // no new handshake: the clientId of the login
            const handshakes = c.requests.flatMap((r) => r.messages)
                .filter((m) => m.channel === '/meta/handshake');
            assert.equal(handshakes.length, 1);
        });
    });
}

for (const engine of ENGINES) {
    const combo = matrix(['long-polling']).find((m) => m.engine === engine);
    if (!combo) {
        continue;
    }

    describe(`a backend publishes, CometD clients, ${engine} engine`
             + (engine === 'redis' ? ' (2 workers)' : ''), {
        timeout: 120000,
        skip: combo.skip,
    }, () => {
        let app;
        let server;
        const clients = [];

        // a client that records every message delivered to it:
        // c.delivered
        async function login(user, transport) {
            const c = newCometD(server.url, {}, transport);
            c.delivered = [];
            c.registerExtension('service-test-deliveries', {
                incoming(message) {
                    if (!message.channel.startsWith('/meta/')
                        && message.successful === undefined) {
                        c.delivered.push(message);
                    }
                    return message;
                },
            });
            clients.push(c);
            const up = cometdConnected(c);
            await cometdHandshake(c, { ext: { auth: { user } } });
            await up;
            return c;
        }

        before(async () => {
            ({ app, server } = await start(engine));
        });

        after(async () => {
            await Promise.all(clients.map((c) => cometdDisconnect(c)));
            try {
                server.assertCleanLog();
            } finally {
                await server.close();
                await app.close();
            }
        });

        test('to a user: both of her sessions (websocket, long-polling), '
             + 'nobody else; an array in order', async () => {
            const annWs = await login('ann', 'websocket');
            const annLp = await login('ann', 'long-polling');
            const bob = await login('bob', 'long-polling');
            const priv = uniqueChannel('/private');
            const chat = uniqueChannel('/chat');

            // to ann, on a channel nobody subscribed to
            const sent = await publish(server, {
                channel: priv, data: { text: 'hello ann' }, user: 'ann' });
            assert.equal(sent.status, 200);
            assert.deepEqual(sent.json, [
                { channel: priv, successful: true, sessions: 2 }]);
            await until(() => annWs.delivered.length >= 1
                              && annLp.delivered.length >= 1, 10000,
                        'ann\'s two sessions');
            for (const c of [annWs, annLp]) {
                assert.deepEqual(c.delivered.map((m) => [m.channel, m.data]),
                                 [[priv, { text: 'hello ann' }]]);
            }

            // to bob: he gets his own and, before it, nothing of ann's
            const toBob = await publish(server, {
                channel: priv, data: { text: 'hello bob' }, user: 'bob' });
            assert.deepEqual(toBob.json, [
                { channel: priv, successful: true, sessions: 1 }]);
            await until(() => bob.delivered.length >= 1, 10000,
                        'bob\'s message');
            assert.deepEqual(bob.delivered.map((m) => m.data),
                             [{ text: 'hello bob' }]);

            // an array to a channel all three subscribed to: in order
            const got = new Map();
            for (const c of [annWs, annLp, bob]) {
                got.set(c, []);
                await cometdSubscribe(c, chat, (m) => got.get(c).push(m.data));
            }
            const batch = [1, 2, 3, 4, 5].map((n) => ({ channel: chat,
                                                         data: { n } }));
            const res = await publish(server, batch);
            assert.equal(res.status, 200);
            assert.deepEqual(res.json, batch.map(() => (
                { channel: chat, successful: true, sessions: 3 })));
            for (const [c, list] of got) {
                await until(() => list.length >= 5, 10000,
                            `the array at ${c.getClientId()}`);
                assert.deepEqual(list, [1, 2, 3, 4, 5].map((n) => ({ n })));
            }
            await sleep(200);
            assert.equal(annWs.delivered.length, 6);
            assert.equal(annLp.delivered.length, 6);
            assert.equal(bob.delivered.length, 6);
        });
    });
}
