// A redis-server of its own for a test file, as the Perl tests have one
// (t/redis/lib/Test/Bayeux/Redis.pm): a free loopback port, no
// persistence, stopped at the end.
//
//   const redis = new Redis();
//   await redis.start();             // resolves once it answers PING
//   redis.url                        // redis://127.0.0.1:<port>/0
//   await redis.command('DBSIZE')    // one command, its reply
//   await redis.restart();           // killed and started again
//   await redis.stop();              // and the directory is removed
//
// TEST_REDIS_SERVER names another binary (default: redis-server on PATH,
// or /usr/bin/redis-server).  A Redis that a failed test forgot is killed
// when the test process exits.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort } from './server.js';

const running = new Set();

process.on('exit', () => {
    for (const child of running) {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
});

export function redisBinary() {
    const candidates = process.env.TEST_REDIS_SERVER
        ? [process.env.TEST_REDIS_SERVER]
        : (process.env.PATH || '').split(':').concat(['/usr/bin', '/usr/sbin'])
            .map((d) => path.join(d || '.', 'redis-server'));
    for (const p of candidates) {
        try {
            fs.accessSync(p, fs.constants.X_OK);
            return p;
        } catch { /* next */ }
    }
    return null;
}

// One command over a connection of its own; resolves to the reply (a
// string, a number, null, or an array of them), rejects on an error reply.
function command(port, args, ms = 2000) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ host: '127.0.0.1', port });
        let buf = Buffer.alloc(0);
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error('redis: timeout'));
        }, ms);
        const done = (err, value) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) {
                reject(err);
            } else {
                resolve(value);
            }
        };
        sock.on('error', (err) => done(err));
        sock.on('connect', () => {
            let req = `*${args.length}\r\n`;
            for (const a of args) {
                const s = String(a);
                req += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
            }
            sock.write(req);
        });
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            let r;
            try {
                r = parse(buf, 0);
            } catch (err) {
                done(err);
                return;
            }
            if (r) {
                done(null, r.value);
            }
        });
    });
}

// RESP: { value, end } or null if buf holds less than one reply.
function parse(buf, at) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) {
        return null;
    }
    const type = String.fromCharCode(buf[at]);
    const line = buf.toString('utf8', at + 1, eol);
    const next = eol + 2;
    switch (type) {
    case '+':
        return { value: line, end: next };
    case ':':
        return { value: Number(line), end: next };
    case '-':
        throw new Error(`redis error: ${line}`);
    case '$': {
        const n = Number(line);
        if (n < 0) {
            return { value: null, end: next };
        }
        if (buf.length < next + n + 2) {
            return null;
        }
        return { value: buf.toString('utf8', next, next + n),
                 end: next + n + 2 };
    }
    case '*': {
        const n = Number(line);
        if (n < 0) {
            return { value: null, end: next };
        }
        const list = [];
        let pos = next;
        for (let i = 0; i < n; i++) {
            const r = parse(buf, pos);
            if (!r) {
                return null;
            }
            list.push(r.value);
            pos = r.end;
        }
        return { value: list, end: pos };
    }
    default:
        throw new Error(`redis: bad reply ${JSON.stringify(line)}`);
    }
}

export class Redis {
    // persistent: an append-only file written at every command, so that a
    // restart (even after SIGKILL) finds everything again
    constructor({ persistent = false } = {}) {
        this.persistent = persistent;
        this.port = null;
        this.dir = null;
        this.child = null;
        this.exited = null;
    }

    get url() {
        return `redis://127.0.0.1:${this.port}/0`;
    }

    command(...args) {
        return command(this.port, args);
    }

    async start() {
        const bin = redisBinary();
        if (!bin) {
            throw new Error('redis-server not found '
                            + '(apt-get install redis-server)');
        }
        if (!this.dir) {
            this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayeux-redis-'));
        }
        if (!this.port) {
            this.port = await freePort();
        }
        const child = spawn(bin, [
            '--port', String(this.port), '--bind', '127.0.0.1',
            '--save', '',
            '--appendonly', this.persistent ? 'yes' : 'no',
            '--appendfsync', 'always', '--dir', this.dir,
            '--logfile', path.join(this.dir, 'redis.log'),
            '--daemonize', 'no',
        ], { stdio: 'ignore' });
        this.child = child;
        running.add(child);
        child.unref();
        let dead = null;
        this.exited = new Promise((resolve) => {
            child.once('exit', (code, signal) => {
                running.delete(child);
                dead = { code, signal };
                resolve(dead);
            });
        });

        const deadline = Date.now() + 10000;
        while (Date.now() < deadline) {
            if (dead) {
                this.child = null;
                throw new Error(`redis-server exited at start `
                                + `(${dead.code ?? dead.signal}): `
                                + this.logTail());
            }
            try {
                if (await this.command('PING') === 'PONG') {
                    return this;
                }
            } catch { /* not yet */ }
            await sleep(20);
        }
        await this.stop();
        throw new Error(`redis-server did not answer on port ${this.port}`);
    }

    logTail(lines = 10) {
        try {
            return fs.readFileSync(path.join(this.dir, 'redis.log'), 'utf8')
                .split('\n').slice(-lines - 1).join('\n');
        } catch {
            return '';
        }
    }

    // Killed (SIGKILL) and started again on the same port and directory.
    async restart() {
        if (this.child) {
            this.child.kill('SIGKILL');
            await this.exited;
            this.child = null;
        }
        return this.start();
    }

    async stop() {
        const child = this.child;
        if (child) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await this.exited;
            clearTimeout(timer);
            this.child = null;
        }
        if (this.dir && !process.env.TEST_NGINX_KEEP) {
            fs.rmSync(this.dir, { recursive: true, force: true });
            this.dir = null;
        }
    }
}
