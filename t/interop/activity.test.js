// bayeux_max_inactivity (CometD's ActivityExtension) seen from the
// official CometD JavaScript client: a client that only keeps its
// /meta/connect going is ended by the server after the period, its
// connect is told 402::session_unknown with advice to handshake, and the
// client handshakes again by itself (a new clientId, connected again).
// Over websocket and long-polling, on the memory engine and on the Redis
// engine with 2 workers.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Server } from './lib/server.js';
import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdSubscribe,
    newCometD, uniqueChannel, until,
} from './lib/clients.js';
import { engineOptions, matrix, stopRedis } from './lib/matrix.js';

const combos = matrix(['websocket', 'long-polling']);

after(stopRedis);

for (const combo of combos) {
    const { transport, engine } = combo;

    describe(`bayeux_max_inactivity, CometD client, ${combo.name}`, {
        timeout: 60000,
        skip: combo.skip,
    }, () => {
        test('an idle client is ended and handshakes again', async () => {
            const server = new Server({
                timeout: '1s',
                maxInterval: '10s',
                ...await engineOptions(engine),
                location: 'bayeux_max_inactivity 2s;',
            });
            await server.start();
            const c = newCometD(server.url, {}, transport);
            try {
                const handshakes = [];
                const refused = [];
                c.addListener('/meta/handshake', (m) => {
                    if (m.successful) {
                        handshakes.push(m.clientId);
                    }
                });
                c.addListener('/meta/connect', (m) => {
                    if (!m.successful && m.error) {
                        refused.push(m);
                    }
                });
                const up = cometdConnected(c);
                await cometdHandshake(c);
                await up;
                await cometdSubscribe(c, uniqueChannel('/idle'), () => {});
                const t0 = performance.now();

                await until(() => handshakes.length >= 2, 15000,
                            'a second handshake');
                const took = performance.now() - t0;

                assert.ok(took >= 1900, `not before the period (${took} ms)`);
                assert.equal(refused.length, 1, 'one connect refused');
                assert.equal(refused[0].error, '402::session_unknown');
                assert.equal(refused[0].advice.reconnect, 'handshake');
                assert.notEqual(handshakes[1], handshakes[0],
                                'a new session');
                await until(() => c.getStatus() === 'connected'
                                  && c.getClientId() === handshakes[1],
                            5000, 'connected again');
                assert.match(server.errorLog(),
                             /bayeux: a session was inactive for bayeux_max_inactivity \(2000 ms\), the session ends/);
            } finally {
                await cometdDisconnect(c);
                server.assertCleanLog();
                await server.close();
            }
        });
    });
}
