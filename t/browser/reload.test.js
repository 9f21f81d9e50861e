// CometD's ReloadExtension in a real browser (Debian's chromium, headless,
// driven by playwright-core): a page subscribes, reloads, and its new
// load resumes the same session, without a handshake reaching the
// server, and gets what was published while it was gone, exactly once.
//
// The page is t/browser/reload/index.html, served by the test's nginx
// (t/interop/lib/server.js) with the CometD client from node_modules.
// It calls cometd.reload() at pagehide, as the extension asks.  Messages
// go in through the publish API (bayeux_publisher); the status location
// (bayeux_status) counts the sessions created and the connects held.
// Each transport (long-polling, websocket, callback-polling) on both
// engines: the memory engine, and the Redis engine with two workers (the
// reloaded page may come back through the other one); and a page that
// has CometD's AckExtension too.
//
// "While it was gone": the reloaded page's CometD client is held back
// (a playwright route on cometd.js) until the old page's /meta/connect
// has left the server, then two messages are published, then the
// client loads.
//
// Without chromium this skips, or fails under CI=true.  CHROMIUM names
// another binary (default /usr/bin/chromium).

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

import { Redis } from '../interop/lib/redis.js';
import { REPO, Server } from '../interop/lib/server.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CI = process.env.CI === 'true';

const missing = fs.existsSync(CHROMIUM) ? null
    : `${CHROMIUM} is not installed (apt-get install chromium, `
      + 'or run util/npm-deps as root)';

if (missing && CI) {
    test('chromium is installed', () => {
        assert.fail(missing);
    });
}

async function until(what, fn, timeout = 10000) {
    const deadline = Date.now() + timeout;
    for (;;) {
        const v = await fn();
        if (v) {
            return v;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting for ${what}`);
        }
        await sleep(50);
    }
}

describe('reload extension in chromium', {
    skip: missing || false,
    timeout: 120000,
}, () => {
    let redis;
    const servers = {};
    let browser;
    let context;

    // What nginx serves, copied where its workers (nobody, when the tests
    // run as root) may read it: the checkout may be under a directory
    // only its owner can enter (a clone in a mktemp -d).
    let files;

    function newServer(engine) {
        return new Server({
            engine,
            redis,
            timeout: '20s',
            maxInterval: '20s',
            http: `types {
        text/html               html;
        application/javascript  js;
    }`,
            server: `
        location /lib/cometd/ {
            alias ${path.join(files, 'cometd')}/;
        }
        location /reload/ {
            alias ${path.join(files, 'reload')}/;
        }
        location = /publish {
            bayeux_publisher /cometd;
        }
        location = /status {
            bayeux_status;
        }`,
        });
    }

    before(async () => {
        files = fs.mkdtempSync(path.join(os.tmpdir(), 'bayeux-reload-'));
        fs.chmodSync(files, 0o755);
        fs.cpSync(path.join(REPO, 'node_modules', 'cometd'),
                  path.join(files, 'cometd'), { recursive: true });
        fs.cpSync(path.join(REPO, 't', 'browser', 'reload'),
                  path.join(files, 'reload'), { recursive: true });
        redis = new Redis();
        await redis.start();
        for (const engine of ['memory', 'redis']) {
            servers[engine] = newServer(engine);
            await servers[engine].start();
        }
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: ['--headless', '--no-sandbox', '--disable-gpu',
                   '--disable-quic', '--no-first-run',
                   '--disable-background-networking',
                   '--disable-component-update', '--disable-sync'],
        });
    });

    afterEach(async () => {
        if (context) {
            await context.close().catch(() => {});
            context = null;
        }
    });

    after(async () => {
        if (browser) {
            await browser.close();
        }
        for (const server of Object.values(servers)) {
            server.assertCleanLog();
            await server.close();
        }
        if (redis) {
            await redis.stop();
        }
        if (files) {
            fs.rmSync(files, { recursive: true, force: true });
        }
    });

    let server;                 // the one of the test that runs

    async function status() {
        const res = await fetch(`${server.origin}/status`);
        assert.equal(res.status, 200);
        return (await res.json()).endpoints[0];
    }

    async function publish(channel, n) {
        const res = await fetch(`${server.origin}/publish`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify([{ channel, data: { n } }]),
        });
        assert.equal(res.status, 200);
        const [r] = await res.json();
        assert.equal(r.successful, true);
        assert.equal(r.sessions, 1, 'the page\'s session is subscribed');
    }

    function seen(page) {
        return page.evaluate(() => window.seen);
    }

    // the page is up: subscribed, and its /meta/connect held
    async function settled(page) {
        await page.waitForFunction(() => window.seen
            && window.seen.subscribed && window.seen.connects > 0);
        await until('a held /meta/connect',
                    async () => (await status()).connects_held === 1);
    }

    for (const [engine, transport, ack] of [
        ['memory', 'long-polling'],
        ['memory', 'websocket'],
        ['memory', 'callback-polling'],
        ['redis', 'long-polling'],
        ['redis', 'websocket'],
        ['redis', 'callback-polling'],
        ['memory', 'long-polling', 'ack'],
        ['redis', 'websocket', 'ack'],
    ]) {
        test(`a reloaded page resumes its session (${transport}, `
             + `${engine} engine${ack ? ', with the AckExtension' : ''})`,
             async () => {
            server = servers[engine];
            const problems = [];
            const channel = `/reload/${transport}${ack ? '/ack' : ''}`;
            const before = await status();
            const handshakes = () => server.accessLog().filter(
                (l) => l.uri === '/cometd/handshake').length;
            const handshakesBefore = handshakes();
            context = await browser.newContext();
            const page = await context.newPage();
            page.on('pageerror', (e) => problems.push(e.message));
            page.on('console', (m) => {
                if (m.type() === 'error') {
                    problems.push(m.text());
                }
            });

            // not until "load": a held callback-polling connect (a
            // <script>) put in before it delays it until it is answered
            await page.goto(`${server.origin}/reload/?transport=${transport}`
                            + `&channel=${channel}${ack ? '&ack=1' : ''}`,
                            { waitUntil: 'domcontentloaded' });
            await settled(page);
            await publish(channel, 1);
            await page.waitForFunction(() => window.seen.messages.length);
            const first = await seen(page);
            assert.deepEqual(first.messages, [1]);
            assert.equal(first.handshakes.length, 1);
            assert.equal(first.handshakes[0].successful, true);
            assert.equal(first.handshakes[0].reload, false);
            if (!ack) {
                assert.equal(first.handshakes[0].ack, null);
            }
            const clientId = first.handshakes[0].clientId;

            // the new load's client waits until the old page's connect
            // left the server and two messages were published
            let heldBack = 0;
            await page.route('**/lib/cometd/cometd.js', async (route) => {
                heldBack++;
                await until('the old page\'s connect to end',
                            async () => (await status()).connects_held === 0);
                await publish(channel, 2);
                await publish(channel, 3);
                await route.continue();
            });
            await page.evaluate(() => window.location.reload());
            await settled(page);
            assert.equal(heldBack, 1);

            await page.waitForFunction(
                () => window.seen.messages.length >= 2);
            const second = await seen(page);
            // (ack: what the first reply said of acknowledgements, kept)
            assert.deepEqual(second.handshakes,
                             [{ successful: true, clientId, reload: true,
                                ack: first.handshakes[0].ack }],
                             'the handshake reply replayed, same clientId');
            assert.deepEqual(second.messages, [2, 3]);

            // and the session goes on: a new message, once
            await publish(channel, 4);
            await page.waitForFunction(
                () => window.seen.messages.length >= 3);
            await sleep(300);
            assert.deepEqual((await seen(page)).messages, [2, 3, 4]);

            // one handshake reached the server, for both loads
            const now = await status();
            assert.equal(now.sessions.created - before.sessions.created, 1);
            if (transport !== 'websocket') {
                assert.equal(handshakes() - handshakesBefore, 1);
            }
            assert.equal(now.sessions.ended.expired,
                         before.sessions.ended.expired);
            assert.deepEqual(problems, []);
        });
    }
});
