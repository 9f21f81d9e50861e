// CometD's and Faye's clients on the same server, talking to each other;
// and both through a graceful restart (SIGQUIT) of nginx.  Both clients
// use the same transport, long-polling or websocket, on the memory engine
// (1 worker) and on the redis engine (2 workers).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdPublish,
    cometdSubscribe, fayeConnected, fayeDisconnect, fayePublish,
    fayeSubscribe, newCometD, newFaye, uniqueChannel, until,
} from './lib/clients.js';
import {
    assertHeldWithinAdvice, exchange, withServerLog,
} from './lib/scenarios.js';
import {
    EXCHANGE_QUEUE, engineOptions, matrix, stopRedis,
} from './lib/matrix.js';

// the transports both clients have
const combos = matrix(['long-polling', 'websocket']);

after(stopRedis);

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`CometD and Faye together, ${combo.name}`, {
        timeout: 180000,
        skip: combo.skip,
    }, () => {
        let server;
        let cometd;
        let faye;

        before(async () => {
            server = new Server({ timeout: '5s', maxInterval: '10s',
                                  location: EXCHANGE_QUEUE,
                                  ...await engineOptions(engine) });
            await server.start();
            cometd = newCometD(server.url, {}, transport);
            const up = cometdConnected(cometd);
            await cometdHandshake(cometd);
            await up;
            faye = newFaye(server.url, {}, transport);
            await fayeConnected(faye);
        });

        after(async () => {
            if (cometd) {
                await cometdDisconnect(cometd);
            }
            if (faye) {
                await fayeDisconnect(faye).catch(() => {});
            }
            try {
                for (const c of [cometd, faye].filter(Boolean)) {
                    assertHeldWithinAdvice(c.connectLog);
                    assert.deepEqual([...c.connectLog.connectionTypes],
                                     [transport]);
                }
                server.assertCleanLog();
            } finally {
                await server.close();
            }
        });

        test('CometD publishes, Faye receives (data, id, ext)', async () => {
            const channel = uniqueChannel('/mixed');
            const got = [];
            const ext = { from: 'cometd' };
            faye.addExtension({
                incoming(m, callback) {
                    if (m.channel === channel) {
                        got.push(m);
                    }
                    callback(m);
                },
            });
            await fayeSubscribe(faye, channel, () => {});
            await cometdPublish(cometd, channel, { n: 1 }, { ext });

            await until(() => got.length === 1, 10000, 'the message');
            assert.deepEqual(got[0].data, { n: 1 });
            assert.deepEqual(got[0].ext, ext);
            const sent = cometd.requests.flatMap((r) => r.messages)
                .find((m) => m.channel === channel);
            assert.equal(got[0].id, sent.id);
            assert.equal(cometd.getTransport().type, transport);
            assert.equal(faye._dispatcher.connectionType, transport);
        });

        test('Faye publishes, CometD receives', async () => {
            const channel = uniqueChannel('/mixed');
            const got = [];
            await cometdSubscribe(cometd, channel + '/**',
                                  (m) => got.push(m));
            await fayePublish(faye, channel + '/x/y', { n: 2 });

            await until(() => got.length === 1, 10000, 'the message');
            assert.equal(got[0].channel, channel + '/x/y');
            assert.deepEqual(got[0].data, { n: 2 });
        });

        test('2,000 messages each way between a CometD and a Faye process',
             { timeout: 60000 }, async () => {
            const r = await withServerLog(server, exchange(
                'cometd', 'faye', server.url, 2000, 50000,
                [transport, transport]));
            for (const p of r) {
                assert.equal(p.received, 2000, `${p.name} received all`);
                assert.equal(p.disorder, null, `${p.name} in order`);
                assert.equal(p.overheld, 0);
                assert.deepEqual(p.connectionTypes, [transport]);
                assert.equal(p.transportUsed, transport);
                assert.equal(p.httpBesidesHandshakes, 0);
            }
        });
    });
}

// Both clients are connected, each with a /meta/connect held, when nginx
// is stopped gracefully (SIGQUIT, as `nginx -s quit` and the old workers of
// `nginx -s reload` are) and started again.
async function gracefulRestart(combo, timeout) {
    const srv = new Server({ timeout, ...await engineOptions(combo.engine) });
    await srv.start();
    const channel = uniqueChannel('/graceful');
    const c = newCometD(srv.url, { backoffIncrement: 200, maxBackoff: 1000 },
                        combo.transport);
    const f = newFaye(srv.url, { retry: 0.2 }, combo.transport);
    const got = { cometd: [], faye: [] };

    c.addListener('/meta/handshake', (m) => {
        if (m.successful) {
            c.subscribe(channel, (msg) => got.cometd.push(msg.data));
        }
    });
    const up = cometdConnected(c);
    await cometdHandshake(c);
    await up;
    await fayeConnected(f);
    await fayeSubscribe(f, channel, (d) => got.faye.push(d));
    await until(() => c.connectLog.replies.some((m) =>
        m.channel === '/meta/subscribe' && m.successful), 5000, 'subscribe');

    // let both park a /meta/connect
    await new Promise((r) => setTimeout(r, 300));
    const parked = {
        cometd: [...c.connectLog.pending.keys()],
        faye: [...f.connectLog.pending.keys()],
    };
    const ids = { cometd: c.getClientId(), faye: f._dispatcher.clientId };
    const held = { cometd: c.connectLog.held.length,
                   faye: f.connectLog.held.length };
    const stopMs = await srv.stop('SIGQUIT');
    await srv.start();

    return { srv, c, f, channel, got, parked, stopMs, ids, held };
}

function subscribes(log) {
    return log.replies.filter((m) =>
        m.channel === '/meta/subscribe' && m.successful).length;
}

// Memory engine: each client gets 402, handshakes again and resubscribes.
// (With the redis engine there is nothing to wait for: each goes on with
// its session, and what is published meanwhile waits in Redis.)
function recovered(engine, { c, f }) {
    if (engine !== 'memory') {
        return Promise.resolve();
    }
    return until(() => subscribes(c.connectLog) === 2
                       && subscribes(f.connectLog) === 2,
                 15000, 'both to resubscribe');
}

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`graceful restart (SIGQUIT), ${combo.name}`, {
        timeout: 180000,
        skip: combo.skip,
    }, () => {

        test(engine === 'memory'
            ? 'both clients handshake again and receive again'
            : 'both clients go on with their sessions and receive again',
             async () => {
            const r = await gracefulRestart(combo, '3s');
            const { srv, c, f, channel, got, ids, held } = r;
            try {
                await recovered(engine, r);

                const p = newCometD(srv.url);
                await cometdHandshake(p);
                await cometdPublish(p, channel, { after: true });
                await until(() => got.cometd.length === 1
                                  && got.faye.length === 1,
                            15000, 'both to receive');
                assert.deepEqual(got, { cometd: [{ after: true }],
                                        faye: [{ after: true }] });
                await cometdDisconnect(p);

                const unknown = (log) => log.replies.some((m) =>
                    m.channel === '/meta/connect' && /^402:/.test(m.error));
                if (engine === 'memory') {
                    for (const log of [c.connectLog, f.connectLog]) {
                        assert.ok(unknown(log), 'a 402 reply');
                    }
                } else {
                    // sessions and subscriptions live in Redis: the same
                    // clientIds, connected again after the restart
                    assert.equal(c.getClientId(), ids.cometd);
                    assert.equal(f._dispatcher.clientId, ids.faye);
                    assert.ok(c.connectLog.connects.length > held.cometd + 1);
                    assert.ok(f.connectLog.connects.length > held.faye + 1);
                    for (const log of [c.connectLog, f.connectLog]) {
                        assert.equal(unknown(log), false, 'no 402 reply');
                        assert.equal(log.replies.filter((m) =>
                            m.channel === '/meta/handshake').length, 1,
                                     'one handshake');
                        assert.equal(subscribes(log), 1, 'one subscribe');
                    }
                }
                if (transport === 'websocket') {
                    // (Faye, after a new handshake, connects over
                    // long-polling until its websocket is open again)
                    await until(() => c.getTransport().type === 'websocket'
                        && f._dispatcher.connectionType === 'websocket'
                        && f.connectLog.connects.at(-1) === 'websocket',
                                10000, 'both back on websocket');
                }
                srv.assertCleanLog();
            } finally {
                await cometdDisconnect(c);
                await fayeDisconnect(f).catch(() => {});
                await srv.close();
            }
        });

        // A graceful stop answers parked /meta/connect requests at once
        // (successful, Connection: close), and closes websockets at once
        // with 1001 (going away), so that clients reconnect straight away
        // instead of waiting for their held connect to time out.
        test(transport === 'websocket'
            ? 'a graceful stop closes every websocket at once (1001)'
            : 'a graceful stop answers every parked /meta/connect at once',
             async () => {
            const r = await gracefulRestart(combo, '3s');
            const { srv, c, f, parked, stopMs } = r;
            try {
                assert.equal(parked.cometd.length, 1);
                assert.equal(parked.faye.length, 1);
                if (transport === 'websocket') {
                    await until(() => c.connectFailures.some((x) =>
                        x.websocketCode === 1001)
                                      && f.wsCloses.includes(1001),
                                2000, 'both websockets closed with 1001');
                } else {
                    const replied = (log, id) => log.held.some((h) =>
                        String(h.id) === id);
                    const unanswered = [];
                    if (!replied(c.connectLog, parked.cometd[0])) {
                        unanswered.push('CometD (chunked body)');
                    }
                    if (!replied(f.connectLog, parked.faye[0])) {
                        unanswered.push('Faye (Content-Length)');
                    }
                    assert.deepEqual(unanswered, [],
                                     'parked connects without a reply');
                }
                assert.ok(stopMs < 1000,
                          `graceful stop took ${stopMs} ms `
                          + '(bayeux_timeout 3s)');
            } finally {
                // a Faye client retries forever: let both settle first
                await recovered(engine, r).catch(() => {});
                await cometdDisconnect(c);
                await fayeDisconnect(f).catch(() => {});
                await srv.close();
            }
        });
    });
}
