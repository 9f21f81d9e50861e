// One side of a two-process exchange (see exchange() in scenarios.js).
//
//   fork('peer.js', [kind, url, name, peer, base, count])
//
// kind is 'cometd' or 'faye'.  The peer handshakes, subscribes to
// <base>/<name> and says { ready }.  On { go } it publishes count messages
// { seq } to <base>/<peer>, and says { done, ... } once it has both had its
// own publishes acknowledged and received count messages from the other side.
// On { bye } it disconnects and exits.

import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdSubscribe,
    fayeConnected, fayeDisconnect, fayeSubscribe, fayePublish,
    newCometD, newFaye,
} from './clients.js';
import { overheld } from './scenarios.js';

const [kind, url, name, peer, base, countArg] = process.argv.slice(2);
const count = Number(countArg);

let received = 0;
let disorder = null;
let published = 0;
let acked = 0;
let failed = null;
let t0 = 0;
let doneSent = false;

function onData(data) {
    if (disorder === null && (!data || data.seq !== received)) {
        disorder = { expected: received, got: data };
    }
    received += 1;
    check();
}

let client;

function connectLog() {
    return client.connectLog;
}

function check() {
    if (doneSent || received < count || acked < count) {
        return;
    }
    doneSent = true;
    process.send({
        done: true,
        name,
        received,
        acked,
        disorder,
        failed,
        ms: Date.now() - t0,
        overheld: overheld(connectLog()).length,
        connectionTypes: [...connectLog().connectionTypes],
    });
}

async function setup() {
    if (kind === 'cometd') {
        client = newCometD(url);
        const up = cometdConnected(client);
        await cometdHandshake(client);
        await up;
        await cometdSubscribe(client, `${base}/${name}`, (m) => onData(m.data));
    } else {
        client = newFaye(url);
        await fayeConnected(client);
        await fayeSubscribe(client, `${base}/${name}`, onData);
    }
}

// CometD's long-polling transport sends one request at a time besides the
// held /meta/connect, in the order the messages were published: publish
// them all at once.
function publishCometD() {
    const channel = `${base}/${peer}`;
    for (let seq = 0; seq < count; seq++) {
        published += 1;
        client.publish(channel, { seq }, (reply) => {
            if (reply.successful) {
                acked += 1;
            } else if (!failed) {
                failed = reply;
            }
            check();
        });
    }
}

// Faye's transport sends whatever is queued in the same tick as one
// request (of up to 2 KB), and several requests at once, which the network
// may reorder (so does Faye's own server).  A publisher that wants order
// waits for a batch to be acknowledged before it sends the next.
async function publishFaye() {
    const channel = `${base}/${peer}`;
    const window = 20;
    for (let seq = 0; seq < count;) {
        const batch = [];
        for (let i = 0; i < window && seq < count; i++, seq++) {
            published += 1;
            batch.push(fayePublish(client, channel, { seq }).then(
                () => { acked += 1; },
                (err) => { failed = failed || String(err && err.message); }));
        }
        await Promise.all(batch);
    }
    check();
}

process.on('message', async (msg) => {
    if (msg.go) {
        t0 = Date.now();
        const progress = setInterval(() => {
            process.send({ progress: true, name, received, published, acked });
        }, 1000);
        progress.unref();
        if (kind === 'cometd') {
            publishCometD();
        } else {
            await publishFaye();
        }
    } else if (msg.bye) {
        if (kind === 'cometd') {
            await cometdDisconnect(client);
        } else {
            await fayeDisconnect(client);
        }
        process.exit(0);
    }
});

setup().then(
    () => process.send({ ready: true, name }),
    (err) => {
        process.send({ error: String(err && err.stack || err), name });
        process.exit(1);
    });
