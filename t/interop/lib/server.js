// A throw-away nginx with ngx_bayeux_module for one test file.
//
//   const server = new Server({ timeout: '5s' });
//   await server.start();            // free port, nginx in the foreground
//   server.url                       // http://127.0.0.1:<port>/cometd
//   await server.restart();          // same port, the memory engine forgets
//   server.errorLog()                // text of logs/error.log
//   server.accessLog()               // [{ method, uri, status, ... }]
//   server.assertCleanLog()          // no [alert]/[crit]/[emerg], no crash
//   await server.close();            // stop and remove the prefix directory
//
// Environment, as the Perl harness reads it: TEST_NGINX_BINARY (default
// /usr/sbin/nginx), TEST_NGINX_MODULE (default build/ngx_bayeux_module.so of
// this repository), TEST_NGINX_KEEP=1 keeps the prefix directory.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                                 '../../..');
export const NGINX = process.env.TEST_NGINX_BINARY || '/usr/sbin/nginx';
export const MODULE = process.env.TEST_NGINX_MODULE
    || path.join(REPO, 'build', 'ngx_bayeux_module.so');

const running = new Set();
let prefixSeq = 0;

process.on('exit', () => {
    for (const child of running) {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
});

// A port that nobody listens on right now (the kernel picks it).
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

function canConnect(port) {
    return new Promise((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port });
        sock.once('connect', () => { sock.destroy(); resolve(true); });
        sock.once('error', () => { sock.destroy(); resolve(false); });
    });
}

export class Server {
    // options:
    //   timeout, maxInterval, interval  bayeux_timeout / bayeux_max_interval /
    //                                   bayeux_interval (nginx time strings)
    //   engine     'memory' (default) or 'redis'
    //   redis      for the redis engine: a Redis (redis.js) or a redis:// URL
    //   prefix     bayeux_redis_prefix (default: one of its own per Server,
    //              kept across restarts); servers that share a Redis and
    //              a prefix are one Bayeux server
    //   workers    worker_processes (default 1; 2 with the redis engine)
    //   location   extra directives inside location /cometd
    //   server     extra directives inside server { }
    //   http       extra directives inside http { }
    //   port       a fixed port (default: a free one)
    constructor(options = {}) {
        this.options = {
            timeout: '5s',
            maxInterval: '10s',
            engine: 'memory',
            location: '',
            server: '',
            http: '',
            ...options,
        };
        const o = this.options;
        if (o.engine === 'redis') {
            if (!o.redis) {
                throw new Error('the redis engine needs options.redis');
            }
            o.workers = o.workers || 2;
            o.prefix = o.prefix || `bayeux:i${process.pid}x${++prefixSeq}:`;
        }
        o.workers = o.workers || 1;
        this.port = options.port || null;
        this.dir = null;
        this.child = null;
        this.exited = null;
        this.output = '';
    }

    get url() {
        return `http://127.0.0.1:${this.port}/cometd`;
    }

    get origin() {
        return `http://127.0.0.1:${this.port}`;
    }

    config() {
        const o = this.options;
        const interval = o.interval ? `bayeux_interval ${o.interval};` : '';
        let engine = '';
        if (o.engine === 'redis') {
            const url = typeof o.redis === 'string' ? o.redis : o.redis.url;
            engine = `bayeux_engine redis;
    bayeux_redis_url ${url};
    bayeux_redis_prefix ${o.prefix};`;
        }

        return `# written by t/interop/lib/server.js
load_module ${MODULE};
worker_processes ${o.workers};
daemon off;
master_process on;
pid logs/nginx.pid;
error_log logs/error.log info;

events {
    worker_connections 1024;
}

http {
    # every request, websocket upgrades (101) included
    log_format interop '$request_method $uri $status "$http_upgrade" $arg_raw';
    access_log logs/access.log interop;
    ${engine}
    client_body_temp_path ${this.dir}/cbt;
    proxy_temp_path ${this.dir}/tmp;
    fastcgi_temp_path ${this.dir}/tmp;
    uwsgi_temp_path ${this.dir}/tmp;
    scgi_temp_path ${this.dir}/tmp;
    ${o.http}

    server {
        listen 127.0.0.1:${this.port};
        ${o.server}

        location /cometd {
            bayeux;
            bayeux_timeout ${o.timeout};
            bayeux_max_interval ${o.maxInterval};
            ${interval}
            ${o.location}
        }
    }
}
`;
    }

    async start() {
        if (this.child) {
            throw new Error('server already running');
        }
        if (!fs.existsSync(MODULE)) {
            throw new Error(`${MODULE} does not exist: run "make" first`);
        }
        if (!this.dir) {
            this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayeux-interop-'));
            // as root, the worker runs as nobody and writes cbt/ in here
            fs.chmodSync(this.dir, 0o755);
            fs.mkdirSync(path.join(this.dir, 'conf'));
            fs.mkdirSync(path.join(this.dir, 'logs'));
        }
        if (!this.port) {
            this.port = await freePort();
        }
        fs.writeFileSync(path.join(this.dir, 'conf', 'nginx.conf'),
                         this.config());

        // a restart on the same port may find it in TIME_WAIT or not yet
        // released by the previous master: nginx sets SO_REUSEADDR, but
        // wait until nobody accepts there any more
        for (let i = 0; i < 50 && await canConnect(this.port); i++) {
            await sleep(100);
        }

        const child = spawn(NGINX,
                            ['-p', this.dir + '/', '-c', 'conf/nginx.conf'],
                            { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child = child;
        running.add(child);
        // a server a failed test forgot must not keep the test process
        // alive: it is killed on exit (above)
        child.unref();
        child.stdout.unref();
        child.stderr.unref();
        this.output = '';
        child.stdout.on('data', (d) => { this.output += d; });
        child.stderr.on('data', (d) => { this.output += d; });
        this.exited = new Promise((resolve) => {
            child.once('exit', (code, signal) => {
                running.delete(child);
                resolve({ code, signal });
            });
        });

        const deadline = Date.now() + 10000;
        let dead = null;
        this.exited.then((r) => { dead = r; });

        while (Date.now() < deadline) {
            if (dead) {
                this.child = null;
                throw new Error(`nginx exited (${dead.code ?? dead.signal}) `
                    + `at start: ${this.output}\n${this.errorLogTail()}`);
            }
            if (await canConnect(this.port)) {
                return this;
            }
            await sleep(50);
        }
        await this.stop('SIGKILL');
        throw new Error(`nginx did not listen on ${this.port} within 10s: `
                        + this.output);
    }

    // SIGQUIT: graceful shutdown; SIGTERM: fast shutdown.  Resolves to the
    // time the master took to exit, in milliseconds.
    async stop(signal = 'SIGTERM', waitMs = 15000) {
        const child = this.child;
        if (!child) {
            return 0;
        }
        const t0 = Date.now();
        child.kill(signal);
        let timer;
        const expired = new Promise((r) => {
            timer = setTimeout(r, waitMs, 'timeout');
        });
        const r = await Promise.race([this.exited, expired]);
        clearTimeout(timer);
        if (r === 'timeout') {
            child.kill('SIGKILL');
            await this.exited;
            this.child = null;
            throw new Error(`nginx did not exit within ${waitMs} ms `
                            + `of ${signal}`);
        }
        this.child = null;
        return Date.now() - t0;
    }

    async restart(signal = 'SIGTERM') {
        await this.stop(signal);
        await this.start();
        return this;
    }

    errorLog() {
        try {
            return fs.readFileSync(path.join(this.dir, 'logs', 'error.log'),
                                   'utf8');
        } catch {
            return '';
        }
    }

    // The requests nginx has logged (a websocket once it is upgraded):
    // [{ method, uri, status, upgrade, raw }] (raw: a request marked ?raw=1
    // by a test, not by a client library)
    accessLog() {
        let text = '';
        try {
            text = fs.readFileSync(path.join(this.dir, 'logs', 'access.log'),
                                   'utf8');
        } catch {
            return [];
        }
        return text.split('\n').filter(Boolean).map((l) => {
            const m = /^(\S+) (\S+) (\d+) "(.*)" (\S+)$/.exec(l);
            return m ? { method: m[1], uri: m[2], status: Number(m[3]),
                         upgrade: m[4] === '-' ? '' : m[4],
                         raw: m[5] === '1' }
                     : { line: l };
        });
    }

    errorLogTail(lines = 20) {
        return this.errorLog().split('\n').slice(-lines - 1).join('\n');
    }

    // Lines that must never appear: a crashed worker, an alert, ...
    badLogLines() {
        return this.errorLog().split('\n').filter((l) =>
            /\[(alert|crit|emerg)\]/.test(l)
            || /exited on signal/.test(l));
    }

    assertCleanLog() {
        const bad = this.badLogLines();
        if (bad.length) {
            throw new Error(`error log of ${this.dir} has:\n${bad.join('\n')}`);
        }
    }

    async close() {
        await this.stop('SIGTERM');
        if (this.dir && !process.env.TEST_NGINX_KEEP) {
            fs.rmSync(this.dir, { recursive: true, force: true });
            this.dir = null;
        }
    }
}
