// The application decides (issue #12), seen from the official CometD
// JavaScript client: credentials in the handshake's ext reach the
// application, its grants and its ext come back in the handshake reply, a
// refused handshake stops the client, and a refused subscribe or publish
// reaches the client's callback with CometD's error strings.  Over
// websocket and long-polling (one registered at a time), on the memory
// engine and on the Redis engine with 2 workers.  The same with Faye's
// client: credentials put in the handshake's ext by an outgoing extension,
// a refused subscribe or publish rejecting its promise with the error.
//
// The application is a real HTTP server in this process (lib/app.js, node's
// http module on a loopback port), behind internal locations that
// proxy_pass to it, as docs/application.md shows; it records what it gets:
//
//   /_app/handshake  ext.auth.password "x": 200 {"user": ext.auth.user,
//                    "subscribe": ["/chat/**"], "publish": ["/chat/**"],
//                    "ext": {"welcome": user}}; anything else: 403
//   /_app/subscribe  403 {"reason": "not_a_member"}
//   /_app/publish    /private/**: 200 (allowed); anything else:
//                    403 {"reason": "read_only"}

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { App } from './lib/app.js';
import { Server } from './lib/server.js';
import {
    FAYE_TRANSPORTS, cometdConnected, cometdDisconnect, cometdHandshake,
    cometdPublish, cometdSubscribe, fayeConnected, fayeDisconnect,
    fayePublish, fayeSubscribe, newCometD, newFaye, uniqueChannel, until,
} from './lib/clients.js';
import { engineOptions, matrix, stopRedis } from './lib/matrix.js';

const combos = matrix(['websocket', 'long-polling']);

const GRANTS = ['/chat/**'];

function answer(req) {
    const m = req.json || {};
    switch (req.path) {
    case '/_app/handshake': {
        const auth = (m.ext && m.ext.auth) || {};
        if (auth.password !== 'x' || typeof auth.user !== 'string') {
            return { status: 403 };
        }
        return { json: { user: auth.user, subscribe: GRANTS,
                         publish: GRANTS, ext: { welcome: auth.user } } };
    }
    case '/_app/subscribe':
        return { status: 403, json: { reason: 'not_a_member' } };
    case '/_app/publish':
        if (typeof m.channel === 'string'
            && m.channel.startsWith('/private/')) {
            return { status: 200 };
        }
        return { status: 403, json: { reason: 'read_only' } };
    default:
        return { status: 404 };
    }
}

after(stopRedis);

// The application, and nginx asking it: { app, server }, started.
async function start(engine) {
    const app = await new App(answer).start();
    const server = new Server({
        timeout: '5s',
        maxInterval: '10s',
        ...await engineOptions(engine),
        location: `
            bayeux_handshake_request /_app/handshake;
            bayeux_subscribe_request /_app/subscribe;
            bayeux_publish_request /_app/publish;`,
        server: `
        location /_app/ {
            internal;
            proxy_pass http://127.0.0.1:${app.port};
            proxy_read_timeout 5s;
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

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`the application decides, CometD client, ${combo.name}`, {
        timeout: 120000,
        skip: combo.skip,
    }, () => {
        let app;
        let server;
        const clients = [];

        // a client that records every message delivered to it (whatever
        // its own listeners do with them): c.delivered
        function client(config) {
            const c = newCometD(server.url, config, transport);
            c.delivered = [];
            c.registerExtension('auth-test-deliveries', {
                incoming(message) {
                    // not the replies to its publishes
                    if (!message.channel.startsWith('/meta/')
                        && message.successful === undefined) {
                        c.delivered.push(message);
                    }
                    return message;
                },
            });
            clients.push(c);
            return c;
        }

        async function login(user) {
            const c = client();
            const up = cometdConnected(c);
            const reply = await cometdHandshake(c, {
                ext: { auth: { user, password: 'x' } } });
            await up;
            return { c, reply };
        }

        before(async () => {
            ({ app, server } = await start(engine));
        });

        after(async () => {
            await Promise.all(clients.map((c) => cometdDisconnect(c)));
            try {
                // every /meta/connect went over the one transport (the
                // refused client sent none)
                for (const c of clients) {
                    const types = [...c.connectLog.connectionTypes];
                    if (types.length) {
                        assert.deepEqual(types, [transport]);
                    }
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

        test('credentials in ext reach the application; its ext comes '
             + 'back in the handshake reply', async () => {
            const { c, reply } = await login('ann');
            assert.equal(reply.successful, true);
            assert.equal(reply.ext.welcome, 'ann');
            await until(() => c.getStatus() === 'connected', 5000,
                        'connected');

            // the handshake as the client sent it...
            const sent = c.requests[0].messages[0];
            assert.equal(sent.channel, '/meta/handshake');
            // ... is what the application got, as JSON
            const got = app.on('/_app/handshake');
            assert.equal(got.length, 1);
            assert.equal(got[0].method, 'POST');
            assert.match(got[0].headers['content-type'],
                         /^application\/json\b/);
            assert.deepEqual(got[0].json, {
                channel: '/meta/handshake',
                version: '1.0',
                minimumVersion: '1.0',
                supportedConnectionTypes: [transport],
                id: sent.id,
                advice: { timeout: 60000, interval: 0 },
                ext: { auth: { user: 'ann', password: 'x' } },
            });
            // nothing else was asked (a connect is not)
            assert.deepEqual(app.requests.map((r) => r.path),
                             ['/_app/handshake']);
        });

        test('a wrong password: 403::handshake_denied, and no retry',
             async () => {
            // a client that would retry soon if told to
            const c = client({ backoffIncrement: 100, maxBackoff: 100 });
            const reply = await new Promise((resolve) => {
                c.handshake({ ext: { auth: { user: 'ann',
                                             password: 'wrong' } } },
                            resolve);
            });
            assert.equal(reply.successful, false);
            assert.equal(reply.error, '403::handshake_denied');
            assert.equal(reply.advice && reply.advice.reconnect, 'none');
            assert.equal(reply.clientId, undefined);

            // the client stops of itself...
            await until(() => c.isDisconnected(), 5000, 'disconnected');
            // ... and stays stopped: a retry would come within 100 ms of
            // backoff; nothing comes in ten times that
            await sleep(1000);
            assert.equal(c.getStatus(), 'disconnected');
            assert.deepEqual(app.requests.map((r) => r.path),
                             ['/_app/handshake']);
            assert.deepEqual(app.requests[0].json.ext,
                             { auth: { user: 'ann', password: 'wrong' } });
            const handshakes = c.requests.flatMap((r) => r.messages)
                .filter((m) => m.channel === '/meta/handshake');
            assert.equal(handshakes.length, 1);
            assert.deepEqual(c.connectLog.connects, [], 'no /meta/connect');
        });

        test('granted channels at once; a refused subscribe and publish '
             + 'reach the callbacks with the error', async () => {
            const chat = uniqueChannel('/chat');
            const priv = uniqueChannel('/private');
            const news = uniqueChannel('/news');
            const { c: ann } = await login('ann');
            const { c: bob } = await login('bob');
            app.requests.length = 0;

            // /chat/** was granted at handshake: no question asked
            const chatGot = [];
            await cometdSubscribe(ann, chat, (m) => chatGot.push(m));
            assert.deepEqual(app.requests, []);

            // /private/... was not: the application refuses it
            const privGot = [];
            const refused = await new Promise((resolve) => {
                ann.subscribe(priv, (m) => privGot.push(m), resolve);
            });
            assert.equal(refused.successful, false);
            assert.equal(refused.error, '403:not_a_member:subscribe_denied');
            assert.equal(refused.subscription, priv);
            const asked = app.on('/_app/subscribe');
            assert.equal(asked.length, 1);
            assert.equal(asked[0].json.channel, '/meta/subscribe');
            assert.equal(asked[0].json.subscription, priv);
            assert.equal(asked[0].json.clientId, ann.getClientId());

            // bob may publish there (the application allows it), then on
            // the chat; ann gets the chat message and nothing of the other
            const allowed = await cometdPublish(bob, priv, { secret: 1 });
            assert.equal(allowed.successful, true);
            assert.equal(app.on('/_app/publish').length, 1);
            await cometdPublish(bob, chat, { text: 'hello ann' });
            await until(() => chatGot.length >= 1, 10000,
                        'the chat message');
            assert.deepEqual(chatGot.map((m) => m.data),
                             [{ text: 'hello ann' }]);
            assert.deepEqual(privGot, []);
            assert.deepEqual(ann.delivered.map((m) => m.channel), [chat]);

            // a publish the application refuses: the publish callback
            const denied = await new Promise((resolve) => {
                ann.publish(news, { text: 'extra!' }, resolve);
            });
            assert.equal(denied.successful, false);
            assert.equal(denied.error, '403:read_only:publish_denied');
            const pub = app.on('/_app/publish');
            assert.equal(pub.length, 2);
            assert.equal(pub[1].json.channel, news);
            assert.deepEqual(pub[1].json.data, { text: 'extra!' });

            // and both go on as before
            await cometdPublish(ann, chat, { text: 'still here' });
            await until(() => chatGot.length >= 2, 10000, 'ann\'s own');
            assert.deepEqual(chatGot[1].data, { text: 'still here' });
            assert.deepEqual(ann.delivered.map((m) => m.channel),
                             [chat, chat]);
        });
    });
}

for (const combo of matrix(FAYE_TRANSPORTS)) {
    const { transport, engine } = combo;

    describe(`the application decides, Faye client, ${combo.name}`, {
        timeout: 120000,
        skip: combo.skip,
    }, () => {
        let app;
        let server;
        const clients = [];

        // A Faye client whose handshakes carry ext (an outgoing extension,
        // as Faye has no handshake properties), and that records the
        // replies to its handshakes (client.handshakes) and every message
        // delivered to it (client.delivered).
        function client(ext, options) {
            const c = newFaye(server.url, options, transport);
            c.handshakes = [];
            c.delivered = [];
            c.addExtension({
                outgoing(message, callback) {
                    if (message.channel === '/meta/handshake') {
                        message.ext = { ...message.ext, ...ext };
                    }
                    callback(message);
                },
                incoming(message, callback) {
                    if (message.channel === '/meta/handshake') {
                        c.handshakes.push(message);
                    } else if (!message.channel.startsWith('/meta/')
                               && message.successful === undefined) {
                        c.delivered.push(message);
                    }
                    callback(message);
                },
            });
            clients.push(c);
            return c;
        }

        // { c }: a Faye client is a thenable, it cannot be the value of a
        // promise
        async function login(user) {
            const c = client({ auth: { user, password: 'x' } });
            await fayeConnected(c);
            return { c };
        }

        before(async () => {
            ({ app, server } = await start(engine));
        });

        after(async () => {
            // those let in (fayeDisconnect waits for a client to be
            // connected, which a refused one never is)
            await Promise.all(clients
                .filter((c) => c.handshakes.some((h) => h.successful))
                .map((c) => fayeDisconnect(c).catch(() => {})));
            try {
                server.assertCleanLog();
            } finally {
                await server.close();
                await app.close();
            }
        });

        beforeEach(() => {
            app.requests.length = 0;
        });

        test('credentials in ext reach the application; its ext comes '
             + 'back in the handshake reply', async () => {
            const { c } = await login('ann');
            assert.equal(c.handshakes.length, 1);
            assert.equal(c.handshakes[0].successful, true);
            assert.equal(c.handshakes[0].ext.welcome, 'ann');

            const sent = c.requests[0].messages[0];
            assert.equal(sent.channel, '/meta/handshake');
            const got = app.on('/_app/handshake');
            assert.equal(got.length, 1);
            assert.deepEqual(got[0].json, {
                channel: '/meta/handshake',
                version: '1.0',
                supportedConnectionTypes: sent.supportedConnectionTypes,
                id: sent.id,
                ext: { auth: { user: 'ann', password: 'x' } },
            });
            assert.deepEqual(app.requests.map((r) => r.path),
                             ['/_app/handshake']);
        });

        test('a wrong password: 403::handshake_denied, and no retry',
             async () => {
            // a client that would retry after 100 ms if it did
            const c = client({ auth: { user: 'ann', password: 'wrong' } },
                             { retry: 0.1 });
            c.connect();
            await until(() => c.handshakes.length >= 1, 10000,
                        'the handshake reply');
            const reply = c.handshakes[0];
            assert.equal(reply.successful, false);
            assert.equal(reply.error, '403::handshake_denied');
            assert.equal(reply.advice && reply.advice.reconnect, 'none');

            // nothing more comes in ten times the retry interval
            await sleep(1000);
            assert.equal(c.handshakes.length, 1);
            assert.deepEqual(app.requests.map((r) => r.path),
                             ['/_app/handshake']);
            const sent = c.requests.flatMap((r) => r.messages);
            assert.deepEqual(sent.map((m) => m.channel),
                             ['/meta/handshake']);
        });

        test('granted channels at once; a refused subscribe and publish '
             + 'reject their promises with the error', async () => {
            const chat = uniqueChannel('/chat');
            const priv = uniqueChannel('/private');
            const news = uniqueChannel('/news');
            const { c: ann } = await login('ann');
            const { c: bob } = await login('bob');
            app.requests.length = 0;

            const chatGot = [];
            await fayeSubscribe(ann, chat, (data) => chatGot.push(data));
            assert.deepEqual(app.requests, []);

            const privGot = [];
            const err = await fayeSubscribe(ann, priv,
                                            (data) => privGot.push(data))
                .then(() => null, (e) => e);
            assert.ok(err, 'the subscription is rejected');
            assert.equal(String(err), '403:not_a_member:subscribe_denied');
            assert.equal(err.code, 403);
            const asked = app.on('/_app/subscribe');
            assert.equal(asked.length, 1);
            assert.equal(asked[0].json.subscription, priv);

            await fayePublish(bob, priv, { secret: 1 });
            assert.equal(app.on('/_app/publish').length, 1);
            await fayePublish(bob, chat, { text: 'hello ann' });
            await until(() => chatGot.length >= 1, 10000,
                        'the chat message');
            assert.deepEqual(chatGot, [{ text: 'hello ann' }]);
            assert.deepEqual(privGot, []);
            assert.deepEqual(ann.delivered.map((m) => m.channel), [chat]);

            const denied = await fayePublish(ann, news, { text: 'extra!' })
                .then(() => null, (e) => e);
            assert.ok(denied, 'the publication is rejected');
            assert.equal(String(denied), '403:read_only:publish_denied');
            const pub = app.on('/_app/publish');
            assert.equal(pub.length, 2);
            assert.equal(pub[1].json.channel, news);
            assert.deepEqual(pub[1].json.data, { text: 'extra!' });
        });
    });
}
