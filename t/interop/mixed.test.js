// CometD's and Faye's clients on the same server, talking to each other;
// and both through a graceful restart (SIGQUIT) of nginx.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdPublish,
    cometdSubscribe, fayeConnected, fayeDisconnect, fayePublish,
    fayeSubscribe, newCometD, newFaye, uniqueChannel, until,
} from './lib/clients.js';
import { assertHeldWithinAdvice, exchange } from './lib/scenarios.js';

const server = new Server({ timeout: '5s', maxInterval: '10s' });
let cometd;
let faye;

before(async () => {
    await server.start();
    cometd = newCometD(server.url);
    const up = cometdConnected(cometd);
    await cometdHandshake(cometd);
    await up;
    faye = newFaye(server.url);
    await fayeConnected(faye);
});

after(async () => {
    await cometdDisconnect(cometd);
    await fayeDisconnect(faye).catch(() => {});
    try {
        assertHeldWithinAdvice(cometd.connectLog);
        assertHeldWithinAdvice(faye.connectLog);
        server.assertCleanLog();
    } finally {
        await server.close();
    }
});

describe('CometD and Faye together', { timeout: 180000 }, () => {

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
    });

    test('Faye publishes, CometD receives', async () => {
        const channel = uniqueChannel('/mixed');
        const got = [];
        await cometdSubscribe(cometd, channel + '/**', (m) => got.push(m));
        await fayePublish(faye, channel + '/x/y', { n: 2 });

        await until(() => got.length === 1, 10000, 'the message');
        assert.equal(got[0].channel, channel + '/x/y');
        assert.deepEqual(got[0].data, { n: 2 });
    });

    test('2,000 messages each way between a CometD and a Faye process', {
        timeout: 60000,
    }, async () => {
        const r = await exchange('cometd', 'faye', server.url, 2000);
        for (const p of r) {
            assert.equal(p.received, 2000, `${p.name} received all`);
            assert.equal(p.disorder, null, `${p.name} in order`);
            assert.equal(p.overheld, 0);
        }
    });
});

// Both clients are connected, each with a /meta/connect held, when nginx
// is stopped gracefully (SIGQUIT, as `nginx -s quit` and the old workers of
// `nginx -s reload` are) and started again.
async function gracefulRestart(timeout) {
    const srv = new Server({ timeout });
    await srv.start();
    const channel = uniqueChannel('/graceful');
    const c = newCometD(srv.url, { backoffIncrement: 200, maxBackoff: 1000 });
    const f = newFaye(srv.url, { retry: 0.2 });
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
    const stopMs = await srv.stop('SIGQUIT');
    await srv.start();

    return { srv, c, f, channel, got, parked, stopMs };
}

// Each client gets 402, handshakes again and resubscribes.
function recovered(c, f) {
    const subscribed = (log) => log.replies.filter((m) =>
        m.channel === '/meta/subscribe' && m.successful).length === 2;
    return until(() => subscribed(c.connectLog) && subscribed(f.connectLog),
                 15000, 'both to resubscribe');
}

describe('graceful restart (SIGQUIT)', { timeout: 180000 }, () => {

    test('both clients come back and receive again', async () => {
        const { srv, c, f, channel, got } = await gracefulRestart('3s');
        try {
            await recovered(c, f);
            for (const log of [c.connectLog, f.connectLog]) {
                assert.ok(log.replies.some((m) => m.channel === '/meta/connect'
                    && /^402:/.test(m.error)), 'a 402 reply');
            }

            const p = newCometD(srv.url);
            await cometdHandshake(p);
            await cometdPublish(p, channel, { after: true });
            await until(() => got.cometd.length === 1 && got.faye.length === 1,
                        5000, 'both to receive');
            assert.deepEqual(got, { cometd: [{ after: true }],
                                    faye: [{ after: true }] });
            await cometdDisconnect(p);
            srv.assertCleanLog();
        } finally {
            await cometdDisconnect(c);
            await fayeDisconnect(f).catch(() => {});
            await srv.close();
        }
    });

    // A graceful stop answers parked /meta/connect requests at once
    // (successful, Connection: close), so that clients reconnect straight
    // away instead of seeing a reset connection and backing off.
    test('a graceful stop answers every parked /meta/connect at once',
         async () => {
        const { srv, c, f, parked, stopMs } = await gracefulRestart('3s');
        try {
            assert.equal(parked.cometd.length, 1);
            assert.equal(parked.faye.length, 1);
            const replied = (log, id) => log.held.some((h) =>
                String(h.id) === id);
            const unanswered = [];
            if (!replied(c.connectLog, parked.cometd[0])) {
                unanswered.push('CometD (chunked body)');
            }
            if (!replied(f.connectLog, parked.faye[0])) {
                unanswered.push('Faye (Content-Length)');
            }
            assert.deepEqual(unanswered, [], 'parked connects without a reply');
            assert.ok(stopMs < 1000,
                      `graceful stop took ${stopMs} ms (bayeux_timeout 3s)`);
        } finally {
            // a Faye client retries forever: let both settle first
            await recovered(c, f).catch(() => {});
            await cometdDisconnect(c);
            await fayeDisconnect(f).catch(() => {});
            await srv.close();
        }
    });
});
