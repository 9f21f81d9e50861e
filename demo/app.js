// The chat demo's application: who may join the room, who is in it, and
// private messages.  nginx asks it through internal locations that
// proxy_pass here (util/demo writes that configuration):
//
// POST /_app/handshake (bayeux_handshake_request), at every handshake:
// may the name the page sends in the handshake's ext join?
//
//   {"channel":"/meta/handshake", ..., "ext":{"login":{"name":"Ann"}}}
//
//   A name of 1 to 32 characters, each a letter (of any script, accents
//   included), a digit, "_", "-" or a space, is let in:
//
//   200 {"user":"Ann","subscribe":["/chat/room","/presence"],
//        "publish":["/chat/room"]}
//
//   which makes the session Ann's and grants it what the page uses, and
//   nothing else (no other subscribe or publish is allowed, as no
//   bayeux_subscribe_request or bayeux_publish_request is configured).
//   Anything else gets 403, and the client "403::handshake_denied".
//
// POST /_app/disconnect (bayeux_disconnect_request), when a session ends
// (a disconnect, or expiry: a tab closed without one):
//
//   {"clientId":"...","user":"Ann","reason":"disconnect"|"expired"}
//
// POST /_app/service (bayeux_service_request), the page's remote calls,
// told apart by the message's channel; the caller's user comes from nginx
// (X-Bayeux-User: $bayeux_user), never from what the page sends:
//
//   /service/members  data {}          200 {"members":["Ann","Bob"]}
//   /service/private  data {to,text}   200 {"sent":true}, after publishing
//       {"from":<the caller>,"text"} on /chat/private to every session of
//       the user "to" through the publish API (bayeux_publisher), which
//       delivers it whether or not they subscribed to /chat/private; 404
//       {"reason":"not_here"} when "to" has no session, 400
//       {"reason":"bad_message"} when to or text is not what it should be
//
// Who is in the room: the sessions of each user, counted from the
// handshakes let in and the disconnect notices, answer /service/members;
// pages follow the changes on /presence (bayeux_presence_channel), which
// nginx publishes when a user's first session begins and the last ends.
//
// An example of an integration with nothing but Node's http module; see
// docs/application.md for what nginx sends and what the answers mean.
//
//   node demo/app.js [port [port-file [publisher]]]
//
// listens on 127.0.0.1:port (default 0: a free port, chosen by the
// kernel) and, once it does, writes the port to port-file if given.
// publisher is where nginx's publish API is: http://127.0.0.1:8080/publish,
// or unix:/path/to/socket for a server that listens on that socket (the
// path is then /publish); without it, private messages fail (503).
// SIGTERM or SIGINT stops it.

import fs from 'node:fs';
import http from 'node:http';

const SUBSCRIBE = ['/chat/room', '/presence'];
const PUBLISH = ['/chat/room'];
const PRIVATE = '/chat/private';
const NAME = /^[\p{L}\p{M}\p{N}_ -]{1,32}$/u;
const TEXT_MAX = 500;

const [portArg = '0', portFile, publisher] = process.argv.slice(2);

// user -> number of sessions
const sessions = new Map();

// The name a handshake asks to join with, or null if there is none that
// may be let in.
function loginName(message) {
    const login = message && message.ext && message.ext.login;
    const name = login && login.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
        return null;
    }
    return name;
}

function reply(res, status, body) {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
}

// The caller's user, as nginx passes it: header values are read as Latin-1
// bytes, and a name is UTF-8.
function callerOf(req) {
    const user = req.headers['x-bayeux-user'];
    return user ? Buffer.from(user, 'latin1').toString('utf8') : null;
}

// POST messages to the publish API: resolves to its results, rejects if
// it cannot be reached or does not answer 200.
function publish(messages) {
    return new Promise((resolve, reject) => {
        if (!publisher) {
            reject(new Error('no publisher given'));
            return;
        }
        const body = JSON.stringify(messages);
        let target;
        if (publisher.startsWith('unix:')) {
            target = { socketPath: publisher.slice(5), path: '/publish' };
        } else {
            const url = new URL(publisher);
            target = { hostname: url.hostname, port: url.port,
                       path: url.pathname + url.search };
        }
        const req = http.request({
            ...target,
            method: 'POST',
            headers: { 'Content-Type': 'application/json',
                       'Content-Length': Buffer.byteLength(body) },
            timeout: 5000,
        }, (res) => {
            const chunks = [];
            res.on('data', (chunk) => chunks.push(chunk));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                if (res.statusCode !== 200) {
                    reject(new Error(`publish: ${res.statusCode} ${text}`));
                    return;
                }
                try {
                    resolve(JSON.parse(text));
                } catch (e) {
                    reject(e);
                }
            });
        });
        req.on('timeout', () => req.destroy(new Error('publish: timeout')));
        req.on('error', reject);
        req.end(body);
    });
}

function handshake(res, message) {
    const name = loginName(message);
    if (name === null) {
        reply(res, 403, { reason: 'name_refused' });
        return;
    }
    sessions.set(name, (sessions.get(name) || 0) + 1);
    reply(res, 200, { user: name, subscribe: SUBSCRIBE, publish: PUBLISH });
}

function disconnected(res, notice) {
    const user = notice && notice.user;
    const n = sessions.get(user);
    if (n > 1) {
        sessions.set(user, n - 1);
    } else if (n === 1) {
        sessions.delete(user);
    }
    reply(res, 204);
}

function members(res) {
    reply(res, 200, { members: [...sessions.keys()].sort() });
}

function privateMessage(res, req, message) {
    const from = callerOf(req);
    const data = message.data || {};
    const { to, text } = data;
    if (from === null || typeof to !== 'string' || !NAME.test(to)
        || typeof text !== 'string' || text.length === 0
        || text.length > TEXT_MAX)
    {
        reply(res, 400, { reason: 'bad_message' });
        return;
    }
    publish({ channel: PRIVATE, data: { from, text }, user: to })
        .then((results) => {
            const r = results[0];
            if (!r || !r.successful) {
                reply(res, 503, { reason: 'not_sent' });
            } else if (r.sessions === 0) {
                reply(res, 404, { reason: 'not_here' });
            } else {
                reply(res, 200, { sent: true });
            }
        }, (e) => {
            console.error(`demo app: ${e.message}`);
            reply(res, 503, { reason: 'not_sent' });
        });
}

function service(res, req, message) {
    switch (message && message.channel) {
    case '/service/members':
        members(res);
        break;
    case '/service/private':
        privateMessage(res, req, message);
        break;
    default:
        reply(res, 404, { reason: 'no_such_service' });
    }
}

const server = http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
        size += chunk.length;
        if (size <= 65536) {
            chunks.push(chunk);
        }
    });
    req.on('end', () => {
        if (req.method !== 'POST') {
            reply(res, 404);
            return;
        }
        let message = null;
        try {
            message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
            // not JSON: nothing to act on
        }
        if (size > 65536) {
            message = null;
        }
        switch (req.url) {
        case '/_app/handshake':
            handshake(res, message);
            break;
        case '/_app/disconnect':
            disconnected(res, message);
            break;
        case '/_app/service':
            service(res, req, message);
            break;
        default:
            reply(res, 404);
        }
    });
});

server.listen(Number(portArg), '127.0.0.1', () => {
    const { port } = server.address();
    if (portFile) {
        // written whole, then renamed: a reader never sees half of it
        fs.writeFileSync(portFile + '.tmp', `${port}\n`);
        fs.renameSync(portFile + '.tmp', portFile);
    }
    console.log(`demo app: listening on 127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
        server.close();
        server.closeAllConnections();
        process.exit(0);
    });
}
