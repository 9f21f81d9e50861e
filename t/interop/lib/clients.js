// The two clients people already use, driven from Node, long-polling only.
//
// CometD: the official JavaScript client (npm cometd) on the Node adapter
// (npm cometd-nodejs-client).  Faye: its own Node client (npm faye).
// Every other transport is removed, so that a silent fallback to WebSocket
// or callback-polling cannot make a test pass; each factory also records
// the connectionType of every /meta/connect it sends, and how long each
// /meta/connect was held, against the advice.timeout in force.

import { createRequire } from 'node:module';
import { adapt } from 'cometd-nodejs-client';

adapt();

const { CometD, LongPollingTransport } = await import('cometd');
const require = createRequire(import.meta.url);
const Faye = require('faye');
const FayeNodeHttp = require('faye/src/transport/node_http');

// Record every HTTP request of Faye's long-polling transport on the client
// that made it: client.requests = [{ url, messages }].
const fayeRequest = FayeNodeHttp.prototype.request;
FayeNodeHttp.prototype.request = function (messages) {
    const client = this._dispatcher && this._dispatcher._client;
    if (client && client.requests) {
        client.requests.push({ url: this.endpoint.href,
                               messages: JSON.parse(JSON.stringify(messages)) });
        if (client.requests.length > 1000) {
            client.requests.shift();
        }
    }
    return fayeRequest.call(this, messages);
};

// Records each /meta/connect: when it was sent, the advice.timeout the
// client had been given at that time, how long until its reply.
class ConnectLog {
    constructor() {
        this.advice = null;         // the latest advice from the server
        this.pending = new Map();   // message id -> { sent, timeout }
        this.held = [];             // { ms, timeout, id }
        this.connectionTypes = new Set();
        this.replies = [];          // every /meta/* reply, in order
    }

    outgoing(message) {
        if (message.channel === '/meta/connect') {
            this.connectionTypes.add(message.connectionType);
            const timeout = message.advice && message.advice.timeout === 0
                ? 0
                : this.advice && this.advice.timeout;
            this.pending.set(String(message.id),
                             { sent: performance.now(), timeout });
        }
    }

    incoming(message) {
        if (!message.channel || !message.channel.startsWith('/meta/')) {
            return;
        }
        this.replies.push(message);
        if (message.advice) {
            this.advice = { ...this.advice, ...message.advice };
        }
        if (message.channel === '/meta/connect') {
            const p = this.pending.get(String(message.id));
            if (p) {
                this.pending.delete(String(message.id));
                this.held.push({
                    id: message.id,
                    ms: performance.now() - p.sent,
                    timeout: p.timeout,
                    successful: message.successful,
                });
            }
        }
    }
}

// ---------------------------------------------------------------- CometD

// Long-polling as it is, plus a record of every HTTP request it makes:
// { url, messages } (messages as sent, in order).
class RecordingLongPollingTransport extends LongPollingTransport {
    constructor(requests) {
        super();
        this.requests = requests;
    }

    xhrSend(packet) {
        this.requests.push({ url: packet.url, messages: JSON.parse(packet.body) });
        if (this.requests.length > 1000) {
            this.requests.shift();
        }
        return super.xhrSend(packet);
    }
}

export function newCometD(url, config = {}) {
    const cometd = new CometD();

    // only long-polling: no WebSocket, no callback-polling to fall back on
    cometd.unregisterTransports();
    cometd.requests = [];
    cometd.registerTransport('long-polling',
                             new RecordingLongPollingTransport(cometd.requests));

    cometd.configure({ url, logLevel: 'warn', ...config });

    const log = new ConnectLog();
    cometd.registerExtension('interop-connect-log', {
        outgoing(message) { log.outgoing(message); return message; },
        incoming(message) { log.incoming(message); return message; },
    });
    cometd.connectLog = log;
    return cometd;
}

// Promise wrappers over the callback API of the CometD client.

export function cometdHandshake(cometd, props) {
    return new Promise((resolve, reject) => {
        cometd.handshake(props, (reply) => {
            if (reply.successful) {
                resolve(reply);
            } else {
                reject(new Error('handshake failed: ' + JSON.stringify(reply)));
            }
        });
    });
}

// Resolves once the first /meta/connect reply has come back successfully,
// i.e. the client is connected and its long poll is running.
export function cometdConnected(cometd) {
    return new Promise((resolve) => {
        const l = cometd.addListener('/meta/connect', (reply) => {
            if (reply.successful) {
                cometd.removeListener(l);
                resolve(reply);
            }
        });
    });
}

export function cometdSubscribe(cometd, channel, onMessage, props) {
    return new Promise((resolve, reject) => {
        const sub = cometd.subscribe(channel, onMessage, props, (reply) => {
            if (reply.successful) {
                resolve(sub);
            } else {
                reject(new Error('subscribe failed: ' + JSON.stringify(reply)));
            }
        });
    });
}

export function cometdUnsubscribe(cometd, sub) {
    return new Promise((resolve, reject) => {
        cometd.unsubscribe(sub, (reply) => {
            if (reply.successful) {
                resolve(reply);
            } else {
                reject(new Error('unsubscribe failed: '
                                 + JSON.stringify(reply)));
            }
        });
    });
}

export function cometdPublish(cometd, channel, data, props) {
    return new Promise((resolve, reject) => {
        cometd.publish(channel, data, props, (reply) => {
            if (reply.successful) {
                resolve(reply);
            } else {
                reject(new Error('publish failed: ' + JSON.stringify(reply)));
            }
        });
    });
}

// Resolves to the /meta/disconnect reply; null if there was none within
// 5 s (the server is gone, ...).  Never rejects: tests call it in cleanup.
export function cometdDisconnect(cometd) {
    return new Promise((resolve) => {
        if (cometd.isDisconnected()) {
            resolve(null);
            return;
        }
        const timer = setTimeout(() => resolve(null), 5000);
        cometd.disconnect((reply) => {
            clearTimeout(timer);
            resolve(reply);
        });
    });
}

// ------------------------------------------------------------------ Faye

export function newFaye(url, options = {}) {
    const client = new Faye.Client(url, { retry: 1, ...options });
    client.requests = [];

    // only long-polling: 'websocket' and 'in-process' are the other
    // transports Faye's Node client has (the browser build adds
    // eventsource, cross-origin-long-polling and callback-polling)
    for (const t of ['websocket', 'in-process', 'eventsource',
                     'cross-origin-long-polling', 'callback-polling']) {
        client.disable(t);
    }
    // Faye's server gives no session cookie here; do not try to keep one
    client.disable('autodisconnect');

    const log = new ConnectLog();
    client.addExtension({
        outgoing(message, callback) { log.outgoing(message); callback(message); },
        incoming(message, callback) { log.incoming(message); callback(message); },
    });
    client.connectLog = log;
    return client;
}

// Faye's subscribe() returns a Subscription, a thenable that resolves when
// the server has acknowledged it.  Being a thenable, it cannot be the value
// of a promise: this resolves to { subscription, cancel(), withChannel() }.
export function fayeSubscribe(client, channel, onMessage) {
    const sub = client.subscribe(channel, onMessage);
    return new Promise((resolve, reject) => {
        sub.then(() => resolve({
            subscription: sub,
            cancel: () => sub.cancel(),
            withChannel: (fn) => sub.withChannel(fn),
        }), reject);
    });
}

export function fayePublish(client, channel, data, options) {
    const pub = client.publish(channel, data, options);
    return new Promise((resolve, reject) => pub.then(resolve, reject));
}

export function fayeConnected(client) {
    return new Promise((resolve) => {
        const ext = {
            incoming(message, callback) {
                if (message.channel === '/meta/connect' && message.successful) {
                    client.removeExtension(ext);
                    resolve(message);
                }
                callback(message);
            },
        };
        client.addExtension(ext);
        client.connect();
    });
}

// Resolves once the server acknowledged /meta/disconnect, rejects if it
// answered with an error.  Faye's disconnect() does nothing unless the
// client is connected; after 5 s without an answer this resolves anyway.
export async function fayeDisconnect(client) {
    // a client that is handshaking again (after a 402, a restart) ignores
    // disconnect() and goes on retrying: wait for it to be connected
    // (client._state, as Faye's own Client.disconnect() checks it)
    for (let i = 0; i < 250 && client._state !== client.CONNECTED
                    && client._state !== client.DISCONNECTED; i++) {
        await new Promise((r) => setTimeout(r, 20));
    }
    const p = client.disconnect();
    if (!p) {
        return undefined;
    }
    return new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 5000);
        p.then(() => { clearTimeout(timer); resolve(); },
               (err) => { clearTimeout(timer); reject(err); });
    });
}

// ----------------------------------------------------------------- misc

// Resolves when predicate() holds, polling every 10 ms; rejects after ms.
export async function until(predicate, ms = 10000, what = 'condition') {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (predicate()) {
            return;
        }
        await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// A channel name of its own for each test, so tests cannot see each
// other's messages on a shared server.
let seq = 0;
export function uniqueChannel(prefix = '/interop') {
    seq += 1;
    return `${prefix}/t${process.pid}x${seq}`;
}

export { CometD, Faye };
