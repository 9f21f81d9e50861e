// Pieces shared by the interop test files.

import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// How much later than advice.timeout a held /meta/connect may come back:
// the time for nginx's timer to fire and the reply to cross the loopback on
// a busy 2-core machine.  The CometD client itself tolerates
// maxNetworkDelay (10 s by default) on top of advice.timeout.
export const HOLD_SLACK_MS = 500;

// The /meta/connects of a ConnectLog (clients.js) that were held longer
// than the advice.timeout in force when they were sent.
export function overheld(log, slack = HOLD_SLACK_MS) {
    return log.held.filter((h) => typeof h.timeout === 'number'
                                  && h.ms > h.timeout + slack);
}

export function assertHeldWithinAdvice(log, slack = HOLD_SLACK_MS) {
    const bad = overheld(log, slack);
    if (bad.length) {
        throw new Error('/meta/connect held longer than advice.timeout: '
            + bad.map((h) => `${h.ms.toFixed(0)} ms > ${h.timeout} ms`)
                .join(', '));
    }
}

// A bare /meta/connect for clientId, outside of any client library;
// resolves to the first message of the reply.  (?raw=1 marks it in the
// access log: not a request of the client under test.)
export async function rawConnect(url, clientId) {
    const res = await fetch(url + '/connect?raw=1', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([{
            channel: '/meta/connect',
            clientId,
            connectionType: 'long-polling',
            id: 'raw-1',
            advice: { timeout: 0 },
        }]),
    });
    const body = await res.json();
    return body[0];
}

// Two clients in two processes send each other count messages, at the same
// time.  Resolves to the two peers' reports (see peer.js): received,
// disorder (null when all arrived in order), overheld, connectionTypes,
// transportUsed, ...  transports: [transport of A, transport of B].
export function exchange(kindA, kindB, url, count, timeoutMs = 100000,
                         transports = ['long-polling', 'long-polling']) {
    const base = `/exchange/p${process.pid}t${Date.now()}`;
    const peers = [
        fork(path.join(here, 'peer.js'),
             [kindA, url, 'a', 'b', base, count, transports[0]]),
        fork(path.join(here, 'peer.js'),
             [kindB, url, 'b', 'a', base, count, transports[1]]),
    ];
    const ready = new Set();
    const done = new Map();
    const progress = {};

    return new Promise((resolve, reject) => {
        const finish = (err, value) => {
            clearTimeout(timer);
            if (err) {
                for (const p of peers) {
                    p.kill('SIGKILL');
                }
                reject(err);
                return;
            }
            let left = peers.length;
            for (const p of peers) {
                p.once('exit', () => {
                    if (--left === 0) {
                        resolve(value);
                    }
                });
                p.send({ bye: true });
            }
        };
        const timer = setTimeout(() => {
            finish(new Error(`exchange of ${count} messages did not finish in `
                             + `${timeoutMs} ms: ${JSON.stringify(progress)}`));
        }, timeoutMs);

        for (const p of peers) {
            p.on('message', (m) => {
                if (m.error) {
                    finish(new Error(`peer ${m.name}: ${m.error}`));
                } else if (m.ready) {
                    ready.add(m.name);
                    if (ready.size === peers.length) {
                        for (const q of peers) {
                            q.send({ go: true });
                        }
                    }
                } else if (m.gap) {
                    finish(new Error(`peer ${m.name}: expected message `
                        + `${m.disorder.expected}, got `
                        + `${JSON.stringify(m.disorder.got)} (lost or out `
                        + 'of order)'));
                } else if (m.progress) {
                    progress[m.name] = m;
                } else if (m.done) {
                    done.set(m.name, m);
                    if (done.size === peers.length) {
                        finish(null, [done.get('a'), done.get('b')]);
                    }
                }
            });
            p.on('exit', (code) => {
                if (done.size < peers.length && code) {
                    finish(new Error(`a peer exited with ${code}`));
                }
            });
        }
    });
}

// Resolves as promise does; a rejection gets the warnings and errors of
// the server's error log appended (a queue overflow, a Redis outage, ...).
export async function withServerLog(server, promise) {
    try {
        return await promise;
    } catch (err) {
        const lines = server.errorLog().split('\n')
            .filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
        if (lines.length) {
            err.message += '\nnginx error log:\n'
                + lines.slice(-10).join('\n');
        }
        throw err;
    }
}
