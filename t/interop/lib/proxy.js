// A TCP proxy on loopback between a client and nginx, for fault tests: it
// passes bytes both ways, and can lose a response on the way (the
// connection is cut instead of passing the bytes on: the server wrote
// them, the client never reads them), cut every connection, or send new
// connections to another server.  HTTP and websocket alike: it does not
// parse what it carries, it only looks at what the server sends.
//
//   const proxy = new Proxy(server.port);
//   await proxy.start();             // proxy.port, proxy.url
//   proxy.loseWhen((text) => text.includes('"channel":"/x"'), 3);
//   proxy.target = other.port;       // new connections go there
//   proxy.cutAll();                  // every open connection is cut
//   proxy.lost                       // responses lost so far
//   await proxy.close();

import net from 'node:net';

export class Proxy {
    constructor(target) {
        this.target = target;
        this.sockets = new Set();
        this.lost = 0;
        this.predicate = null;
        this.budget = 0;
        this.every = 1;
        this.seen = 0;
    }

    get url() {
        return `http://127.0.0.1:${this.port}/cometd`;
    }

    // Loses up to "budget" server writes that "predicate" (their text)
    // matches, one in "every" of those matched.
    loseWhen(predicate, budget, every = 1) {
        this.predicate = predicate;
        this.budget = budget;
        this.every = every;
        this.seen = 0;
    }

    start() {
        this.server = net.createServer((client) => this.pair(client));
        return new Promise((resolve) => {
            this.server.listen(0, '127.0.0.1', () => {
                this.port = this.server.address().port;
                resolve(this);
            });
        });
    }

    pair(client) {
        const upstream = net.connect({ host: '127.0.0.1', port: this.target });
        const cut = () => {
            client.destroy();
            upstream.destroy();
            this.sockets.delete(client);
            this.sockets.delete(upstream);
        };
        this.sockets.add(client);
        this.sockets.add(upstream);
        client.on('data', (d) => upstream.write(d));
        upstream.on('data', (d) => {
            if (this.budget > 0 && this.predicate
                && this.predicate(d.toString('latin1'))
                && ++this.seen % this.every === 0)
            {
                this.budget--;
                this.lost++;
                cut();
                return;
            }
            client.write(d);
        });
        client.on('error', cut);
        upstream.on('error', cut);
        client.on('close', cut);
        upstream.on('close', cut);
    }

    cutAll() {
        for (const s of this.sockets) {
            s.destroy();
        }
        this.sockets.clear();
    }

    close() {
        this.cutAll();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}
