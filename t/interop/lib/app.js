// An application server for the interop tests of the subrequests to the
// application (bayeux_handshake_request, bayeux_subscribe_request,
// bayeux_publish_request): node's http module on a loopback port, no npm
// packages.  It records every request it gets, and answers each with what
// the test's handler returns.
//
//   const app = new App((req) => ({ status: 200, json: { user: 'ann' } }));
//   await app.start();
//   app.port
//   app.requests        // [{ method, path, headers, body, json }], in order
//   app.on(path)        // the requests to that path
//   await app.close();
//
// The handler gets { method, path, headers, body, json } (json: the body
// parsed, or undefined) and returns { status, json } or { status, body }
// (a missing status is 200, no body is an empty one), or a promise of it
// (an answer that comes later).

import http from 'node:http';

export class App {
    constructor(handler) {
        this.handler = handler;
        this.requests = [];
        this.server = null;
        this.port = null;
    }

    start() {
        this.server = http.createServer((req, res) => {
            let body = '';
            req.setEncoding('utf8');
            req.on('data', (d) => { body += d; });
            req.on('end', () => {
                let json;
                try {
                    json = JSON.parse(body);
                } catch {
                    json = undefined;
                }
                const got = { method: req.method, path: req.url,
                              headers: req.headers, body, json };
                this.requests.push(got);
                let answer;
                try {
                    answer = this.handler(got) || {};
                } catch (err) {
                    answer = { status: 500, body: String(err) };
                }
                if (typeof answer.then === 'function') {
                    answer.then((a) => this.respond(res, a || {}),
                                (err) => this.respond(res, {
                                    status: 500, body: String(err) }));
                    return;
                }
                this.respond(res, answer);
            });
        });
        // a server a failed test forgot must not keep the process alive
        this.server.unref();
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(0, '127.0.0.1', () => {
                this.port = this.server.address().port;
                resolve(this);
            });
        });
    }

    respond(res, answer) {
        if (res.destroyed) {
            return;
        }
        const text = answer.json !== undefined
            ? JSON.stringify(answer.json)
            : answer.body || '';
        const headers = { 'Content-Length': Buffer.byteLength(text) };
        if (answer.json !== undefined) {
            headers['Content-Type'] = 'application/json';
        }
        res.writeHead(answer.status || 200, headers);
        res.end(text);
    }

    on(path) {
        return this.requests.filter((r) => r.path === path);
    }

    close() {
        if (!this.server) {
            return Promise.resolve();
        }
        const server = this.server;
        this.server = null;
        server.closeAllConnections();
        return new Promise((resolve) => server.close(() => resolve()));
    }
}
