// The two clients people already use, driven from Node, one transport at
// a time.
//
// CometD: the official JavaScript client (npm cometd) on the Node adapter
// (npm cometd-nodejs-client), with exactly one transport registered:
// websocket, long-polling or callback-polling.  Faye: its own Node client
// (npm faye), long-polling, or websocket (with long-polling kept for the
// handshake, which Faye always sends over HTTP before it upgrades).  Every
// other transport is removed, so that a silent fallback cannot make a test
// pass; each factory also records every request (HTTP request or
// websocket message) its client sends, the connectionType of every
// /meta/connect, and how long each /meta/connect was held, against the
// advice.timeout in force.

import http from 'node:http';
import { createRequire } from 'node:module';
import { adapt } from 'cometd-nodejs-client';

// Each CometD client is a browser of its own, with a cookie jar of its
// own (the server binds a session to the BAYEUX_BROWSER cookie it set at
// the handshake).  The adapter reads the cookies of a request from
// context.cookieStore, the transport's, but files those a response sets
// with options.cookies.storeCookie(url, header), which is not told the
// transport: each request names its client's jar in a header, which the
// url given to storeCookie carries (cookieJars: name -> { host: { name:
// "name=value" } }).
const cookieJars = new Map();
let cookieJarSeq = 0;

function newCookieJar() {
    const name = String(++cookieJarSeq);
    const jar = {};
    cookieJars.set(name, jar);
    return { name, jar };
}

function fileCookie(jar, host, header) {
    const nameValue = header.split(';')[0].trim();
    const equal = nameValue.indexOf('=');
    if (equal > 0) {
        jar[host] = jar[host] || {};
        jar[host][nameValue.substring(0, equal)] = nameValue;
    }
}

function jarCookies(jar, host) {
    return Object.values(jar[host] || {}).join('; ');
}

adapt({
    cookies: {
        storeCookie(url, header, callback) {
            const jar = cookieJars.get(url.headers
                                       && url.headers['X-Interop-Jar']);
            if (jar) {
                fileCookie(jar, url.hostname, header);
            }
            callback();
        },
    },
});

const {
    CometD, CallbackPollingTransport, LongPollingTransport, WebSocketTransport,
} = await import('cometd');
const require = createRequire(import.meta.url);
const Faye = require('faye');
const FayeNodeHttp = require('faye/src/transport/node_http');
const FayeWebSocket = require('faye/src/transport/web_socket');

export const COMETD_TRANSPORTS = ['websocket', 'long-polling',
                                  'callback-polling'];
export const FAYE_TRANSPORTS = ['long-polling', 'websocket'];

// Keeps the last 1000 requests of a client: { url, messages }.
function record(list, url, messages) {
    if (!list) {
        return;
    }
    list.push({ url, messages: JSON.parse(JSON.stringify(messages)) });
    if (list.length > 1000) {
        list.shift();
    }
}

// Record every HTTP request and every websocket message of Faye's
// transports on the client that made it: client.requests = [{ url,
// messages }], url being http://... or ws://...  And the close code of
// every websocket of the client: client.wsCloses = [code, ...].
const fayeRequest = FayeNodeHttp.prototype.request;
FayeNodeHttp.prototype.request = function (messages) {
    const client = this._dispatcher && this._dispatcher._client;
    record(client && client.requests, this.endpoint.href, messages);
    return fayeRequest.call(this, messages);
};

const fayeWsRequest = FayeWebSocket.prototype.request;
FayeWebSocket.prototype.request = function (messages) {
    const client = this._dispatcher && this._dispatcher._client;
    record(client && client.requests,
           FayeWebSocket.getSocketUrl(this.endpoint), messages);
    return fayeWsRequest.call(this, messages);
};

const fayeCreateSocket = FayeWebSocket.prototype._createSocket;
FayeWebSocket.prototype._createSocket = function () {
    const socket = fayeCreateSocket.call(this);
    const client = this._dispatcher && this._dispatcher._client;
    if (socket && client && client.wsCloses) {
        socket.addEventListener('close', (e) => client.wsCloses.push(e.code));
    }
    return socket;
};

// Records each /meta/connect: when it was sent, the advice.timeout the
// client had been given at that time, how long until its reply.
class ConnectLog {
    constructor() {
        this.advice = null;         // the latest advice from the server
        this.pending = new Map();   // message id -> { sent, timeout }
        this.held = [];             // { ms, timeout, id }
        this.connectionTypes = new Set();
        this.connects = [];         // connectionType of each, in order
        this.replies = [];          // every /meta/* reply, in order
    }

    outgoing(message) {
        if (message.channel === '/meta/connect') {
            this.connectionTypes.add(message.connectionType);
            this.connects.push(message.connectionType);
            if (this.connects.length > 1000) {
                this.connects.shift();
            }
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
    constructor(requests, cookies) {
        super();
        this.requests = requests;
        this.cookies = cookies;
        // the adapter reads the cookies of a request here
        this.context = { cookieStore: cookies.jar };
    }

    xhrSend(packet) {
        record(this.requests, packet.url, JSON.parse(packet.body));
        packet.headers = { ...packet.headers,
                           'X-Interop-Jar': this.cookies.name };
        return super.xhrSend(packet);
    }
}

// WebSocket as it is, plus a record of every websocket message it sends:
// { url (ws://...), messages }.
class RecordingWebSocketTransport extends WebSocketTransport {
    constructor(requests, cookies) {
        super();
        this.requests = requests;
    }

    convertToJSON(messages) {
        const json = super.convertToJSON(messages);
        record(this.requests, this.cometd.getURL().replace(/^http/, 'ws'),
               messages);
        return json;
    }
}

// Callback-polling (JSONP) in Node.  The CometD client's own transport
// does everything (envelopes, URL length limits, timeouts, failures) but
// load the script: in a browser, jsonpSend() adds a <script> element to
// the document, which Node has none of, and the cometd-nodejs-client
// adapter provides XMLHttpRequest and WebSocket only.  This jsonpSend() is
// that <script> element: a GET of the same URL (jsonp=<callback> and
// message=<the batch>), whose response, if it is 200, runs as a script
// that can call the callback; anything else (another status, a script
// that throws or does not call back) is the script's error event.  Each
// request is recorded ({ url, messages }), and each response ({ status,
// type }) in transport.scripts.
class NodeCallbackPollingTransport extends CallbackPollingTransport {
    constructor(requests, cookies) {
        super();
        this.requests = requests;
        this.cookies = cookies;
        this.jsonpSeq = 0;
        // a browser's connection pool: keep-alive, several at once
        this.agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
        this.scripts = [];      // { status, type } of every response
    }

    jsonpSend(packet) {
        const callbackName = '_cometd_jsonp_' + this.jsonpSeq++;
        let url = packet.url;
        url += url.indexOf('?') < 0 ? '?' : '&';
        url += 'jsonp=' + callbackName;
        url += '&message=' + encodeURIComponent(packet.body);
        record(this.requests, packet.url, JSON.parse(packet.body));

        let settled = false;
        const fail = () => {
            if (!settled) {
                settled = true;
                packet.onError('jsonp error');
            }
        };
        // a <script> sends the cookies of its host, and keeps those set
        const host = new URL(url).hostname;
        const cookie = jarCookies(this.cookies.jar, host);
        const headers = cookie ? { Cookie: cookie } : {};
        const req = http.get(url, { agent: this.agent, headers }, (res) => {
            for (const h of res.headers['set-cookie'] || []) {
                fileCookie(this.cookies.jar, host, h);
            }
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; });
            res.on('error', () => fail());
            res.on('end', () => {
                this.scripts.push({ status: res.statusCode,
                                    type: res.headers['content-type'] });
                if (this.scripts.length > 100) {
                    this.scripts.shift();
                }
                if (res.statusCode !== 200) {
                    fail();
                    return;
                }
                // the script, with the callback as the one name it can
                // call (in this realm, as a <script> runs in the page's)
                let called = false;
                let response;
                try {
                    new Function(callbackName, body)((r) => {
                        called = true;
                        response = r;
                    });
                } catch (err) {
                    called = false;
                }
                if (!called) {
                    fail();
                    return;
                }
                settled = true;
                packet.onSuccess(response);
            });
        });
        req.on('error', () => fail());
    }
}

const cometdTransports = {
    'long-polling': RecordingLongPollingTransport,
    'websocket': RecordingWebSocketTransport,
    'callback-polling': NodeCallbackPollingTransport,
};

// A CometD client with one transport only: 'long-polling' (the default),
// 'websocket' or 'callback-polling'.  cometd.requests records what it
// sends, cometd.connectLog its /meta/connects, cometd.connectFailures the
// failures its listeners saw on /meta/connect (a websocket closed by the
// server: failure.websocketCode).
export function newCometD(url, config = {}, transport = 'long-polling') {
    const cometd = new CometD();
    const Transport = cometdTransports[transport];
    if (!Transport) {
        throw new Error(`no such CometD transport: ${transport}`);
    }

    // only this one: nothing to fall back on
    cometd.unregisterTransports();
    cometd.requests = [];
    // Each client is a browser of its own (see cookieJars): with the
    // adapter's one jar for the whole process, all clients of a process
    // would be one browser, and CometD's multiple-clients rule would have
    // all but one of them poll every bayeux_multi_session_interval.  The
    // websocket of the adapter (ws) sends no cookie: a new websocket takes
    // its session up by its clientId, as the server allows one without
    // cookie to.
    const t = new Transport(cometd.requests, newCookieJar());
    cometd.registerTransport(transport, t);

    cometd.configure({ url, logLevel: 'warn', ...config });

    const log = new ConnectLog();
    cometd.registerExtension('interop-connect-log', {
        outgoing(message) { log.outgoing(message); return message; },
        incoming(message) { log.incoming(message); return message; },
    });
    cometd.connectLog = log;
    cometd.connectFailures = [];
    cometd.addListener('/meta/connect', (m) => {
        if (!m.successful && m.failure) {
            cometd.connectFailures.push(m.failure);
        }
    });
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

// A Faye client with one transport: 'long-polling' (the default) or
// 'websocket'.  Faye sends its handshake over HTTP whatever the transport
// (long-polling, one of its mandatory connection types), then selects the
// best transport the server offers that works: for 'websocket' long-polling
// stays enabled for the handshake only, and a test must check that
// nothing else went over HTTP (client.requests) and that every
// /meta/connect said websocket (client.connectLog.connectionTypes).
export function newFaye(url, options = {}, transport = 'long-polling') {
    if (!FAYE_TRANSPORTS.includes(transport)) {
        throw new Error(`no such Faye transport: ${transport}`);
    }
    const client = new Faye.Client(url, { retry: 1, ...options });
    client.requests = [];
    client.wsCloses = [];

    // 'websocket' and 'in-process' are the other transports Faye's Node
    // client has (the browser build adds eventsource,
    // cross-origin-long-polling and callback-polling)
    for (const t of ['websocket', 'in-process', 'eventsource',
                     'cross-origin-long-polling', 'callback-polling']) {
        if (t !== transport) {
            client.disable(t);
        }
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

// What went over HTTP although the client uses websocket: the requests
// that carried anything but /meta/handshake.
export function fayeHttpBesidesHandshakes(client) {
    return client.requests.filter((r) => /^http/.test(r.url)
        && r.messages.some((m) => m.channel !== '/meta/handshake'));
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
