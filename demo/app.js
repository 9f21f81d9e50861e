// The chat demo's application: who may join the room.  nginx asks it at
// every handshake (bayeux_handshake_request /_app/handshake, an internal
// location that proxy_passes here; util/demo writes that configuration),
// and this answers from the name the page sends in the handshake's ext:
//
//   {"channel":"/meta/handshake", ..., "ext":{"login":{"name":"Ann"}}}
//
// A name of 1 to 32 characters, each a letter (of any script, accents
// included), a digit, "_", "-" or a space, is let in:
//
//   200 {"user":"Ann","subscribe":["/chat/room","/chat/members"],
//        "publish":["/chat/room","/chat/members"]}
//
// which makes the session Ann's and grants it the two channels the page
// uses, and nothing else (no other subscribe or publish is allowed, as no
// bayeux_subscribe_request or bayeux_publish_request is configured).
// Anything else gets 403, and the client "403::handshake_denied".
//
// An example of an integration with nothing but Node's http module; see
// docs/application.md for what nginx sends and what the answers mean.
//
//   node demo/app.js [port [port-file]]
//
// listens on 127.0.0.1:port (default 0: a free port, chosen by the
// kernel) and, once it does, writes the port to port-file if given.
// SIGTERM or SIGINT stops it.

import fs from 'node:fs';
import http from 'node:http';

const CHANNELS = ['/chat/room', '/chat/members'];
const NAME = /^[\p{L}\p{M}\p{N}_ -]{1,32}$/u;

const [portArg = '0', portFile] = process.argv.slice(2);

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
        if (req.method !== 'POST' || req.url !== '/_app/handshake') {
            reply(res, 404);
            return;
        }
        let message = null;
        try {
            message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
            // not JSON: nobody to let in
        }
        const name = size <= 65536 ? loginName(message) : null;
        if (name === null) {
            reply(res, 403, { reason: 'name_refused' });
            return;
        }
        reply(res, 200, { user: name, subscribe: CHANNELS,
                          publish: CHANNELS });
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
