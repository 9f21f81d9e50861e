// One side of a two-process exchange (see exchange() in scenarios.js).
//
//   fork('peer.js', [kind, url, name, peer, base, count, transport])
//
// kind is 'cometd' or 'faye', transport one of the client's transports
// (clients.js).  The peer handshakes, subscribes to
// <base>/<name> and says { ready }.  On { go } it publishes count messages
// { seq } to <base>/<peer>, and says { done, ... } once it has both had its
// own publishes acknowledged and received count messages from the other side.
// On { bye } it disconnects and exits.

import {
    cometdConnected, cometdDisconnect, cometdHandshake, cometdSubscribe,
    fayeConnected, fayeDisconnect, fayeHttpBesidesHandshakes,
    fayeSubscribe, fayePublish,
    newCometD, newFaye,
} from './clients.js';
import { overheld } from './scenarios.js';

const [kind, url, name, peer, base, countArg, transport] =
    process.argv.slice(2);
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
        // a message lost or out of order: say so now, not at the timeout
        process.send({ gap: true, name, disorder });
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
        transportUsed: kind === 'cometd' ? client.getTransport().type
                                         : client._dispatcher.connectionType,
        // for faye over websocket: what went over HTTP besides handshakes
        httpBesidesHandshakes: kind === 'faye' && transport === 'websocket'
            ? fayeHttpBesidesHandshakes(client).length : 0,
    });
}

async function setup() {
    if (kind === 'cometd') {
        client = newCometD(url, {}, transport);
        const up = cometdConnected(client);
        await cometdHandshake(client);
        await up;
        await cometdSubscribe(client, `${base}/${name}`, (m) => onData(m.data));
    } else {
        client = newFaye(url, {}, transport);
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

// Faye's long-polling transport sends whatever is queued in the same tick
// as one request of up to 2 KB, and what is beyond in further requests at
// the same time, which the network may reorder (as may the server: two
// requests on two connections may be served by two workers at once).  A
// publisher that wants order sends no more than a request holds (10 of
// these messages are about 1.5 KB) and waits for them to be acknowledged
// before it sends the next.  (Over websocket Faye sends each message in a
// websocket message of its own, in order, on one connection.)
async function publishFaye() {
    const channel = `${base}/${peer}`;
    const window = 10;
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
