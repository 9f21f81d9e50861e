// The chat demo in a real browser: Debian's chromium, headless, driven by
// playwright-core (no browser download).  util/demo serves the page on a
// free port; two people (two browser contexts) join, talk both ways, and
// one leaves: over long-polling, over websocket, over callback-polling
// (JSONP, <script> elements), and across origins (the page on one port,
// the Bayeux endpoint on another with bayeux_allow_origin).  The demo's
// application (demo/app.js, started by util/demo) decides at the handshake
// who may join: a name it refuses, then one it lets in.  On each
// transport, three people: the members list (the application's answer to
// a remote call, then /presence) as they join, as a tab dies without a
// disconnect (its session expires: util/demo with DEMO_MAX_INTERVAL=3s)
// and as one leaves; a private message (a remote call, delivered by the
// application through the publish API) that only its recipient gets.  A
// reload with ?reload=1 (CometD's ReloadExtension) keeps the session.  A
// screenshot goes to build/demo-screenshot.png.
//
// Without chromium this skips, or fails under CI=true.  CHROMIUM names
// another binary (default /usr/bin/chromium).

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

import { REPO, freePort } from '../interop/lib/server.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CI = process.env.CI === 'true';
const SCREENSHOT = path.join(REPO, 'build', 'demo-screenshot.png');

const missing = fs.existsSync(CHROMIUM) ? null
    : `${CHROMIUM} is not installed (apt-get install chromium, `
      + 'or run util/npm-deps as root)';

if (missing && CI) {
    test('chromium is installed', () => {
        assert.fail(missing);
    });
}

// util/demo on free ports; env: DEMO_BAYEUX_PORT for the cross-origin
// variant.  Resolves to { url (what util/demo says to open), port,
// bayeuxPort, stop() }.
async function startDemo(cross = false) {
    const port = await freePort();
    const bayeuxPort = cross ? await freePort() : null;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayeux-demo-'));
    // a tab closed without a disconnect: its session expires in seconds
    const env = { ...process.env, DEMO_PORT: String(port), DEMO_DIR: dir,
                  DEMO_MAX_INTERVAL: '3s' };
    if (cross) {
        env.DEMO_BAYEUX_PORT = String(bayeuxPort);
    }
    const demo = spawn(path.join(REPO, 'util', 'demo'), [], {
        env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    demo.stdout.on('data', (d) => { output += d; });
    demo.stderr.on('data', (d) => { output += d; });

    const stop = async () => {
        if (demo.exitCode === null && demo.signalCode === null) {
            const exited = new Promise((r) => demo.once('exit', r));
            demo.kill('SIGTERM');
            await exited;
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };

    // util/demo says where the chat is, then serves it
    const deadline = Date.now() + 60000;
    for (;;) {
        const m = /Chat demo: (\S+)/.exec(output);
        if (demo.exitCode !== null) {
            await stop();
            throw new Error(`util/demo exited: ${output}`);
        }
        if (m) {
            try {
                const res = await fetch(m[1]);
                if (res.ok) {
                    return { url: m[1], port, bayeuxPort, stop };
                }
            } catch { /* not yet */ }
        }
        if (Date.now() > deadline) {
            await stop();
            throw new Error(`util/demo did not serve the chat: ${output}`);
        }
        await sleep(100);
    }
}

// The page's URL with ?transport= (and the ?url= it already has).
function withTransport(url, transport) {
    const u = new URL(url);
    u.searchParams.set('transport', transport);
    return u.href;
}

describe('chat demo in chromium', {
    skip: missing || false,
    timeout: 180000,
}, () => {
    let demo;
    let cross;
    let browser;
    let problems;               // console errors, page errors, of a test

    before(async () => {
        [demo, cross] = await Promise.all([startDemo(), startDemo(true)]);
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            // playwright runs it with a fresh --user-data-dir of its own
            args: ['--headless', '--no-sandbox', '--disable-gpu',
                   '--disable-quic', '--no-first-run',
                   '--disable-background-networking',
                   '--disable-component-update', '--disable-sync'],
        });
    });

    // the people a test left behind, when it failed halfway: their
    // sessions would be in the next test's room
    let contexts = [];

    afterEach(async () => {
        await Promise.all(contexts.map((c) => c.close().catch(() => {})));
        contexts = [];
    });

    after(async () => {
        if (browser) {
            await browser.close();
        }
        await Promise.all([demo, cross].filter(Boolean).map((d) => d.stop()));
    });

    // A person: a browser context of its own (cookies, connections) with
    // one page.  page.traffic records what the page sent: { method, url,
    // resourceType, status, headers (of the response) } and websockets.
    async function person(name, url) {
        const context = await browser.newContext({
            viewport: { width: 1000, height: 720 },
        });
        contexts.push(context);
        const page = await context.newPage();
        page.traffic = { requests: [], websockets: [] };
        page.on('console', (m) => {
            if (m.type() === 'error') {
                problems.push(`${name}: console: ${m.text()}`);
            }
        });
        page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
        page.on('response', (r) => {
            const req = r.request();
            page.traffic.requests.push({
                method: req.method(), url: r.url(),
                resourceType: req.resourceType(), status: r.status(),
                headers: r.headers(),
            });
            if (r.status() >= 400) {
                problems.push(`${name}: ${r.status()} for ${r.url()}`);
            }
        });
        page.on('websocket', (ws) => page.traffic.websockets.push(ws.url()));
        // the ext of every handshake sent over HTTP
        page.traffic.handshakeExts = [];
        page.on('request', (req) => {
            if (new URL(req.url()).pathname !== '/cometd/handshake') {
                return;
            }
            for (const m of JSON.parse(req.postData() || '[]')) {
                page.traffic.handshakeExts.push(m.ext);
            }
        });
        await page.goto(url);
        return page;
    }

    async function join(page, name) {
        await page.getByLabel('Your name').fill(name);
        await page.getByRole('button', { name: 'Join' }).click();
        await page.locator('#status[data-state="online"]').waitFor();
    }

    function members(page) {
        return page.locator('#members li');
    }

    function messages(page) {
        return page.getByRole('log', { name: 'Messages' });
    }

    async function say(page, text) {
        await page.getByRole('textbox', { name: 'Message', exact: true })
            .fill(text);
        await page.getByRole('button', { name: 'Send' }).click();
    }

    async function expectMembers(page, names, timeout = 10000) {
        await page.waitForFunction((want) => {
            const got = [...document.querySelectorAll('#members li')]
                .map((li) => li.firstChild.textContent);
            return JSON.stringify(got) === JSON.stringify(want);
        }, names, { timeout }).catch(async () => {
            const got = await members(page).allTextContents();
            assert.deepEqual(got, names, 'members list');
        });
    }

    // Two people who joined: each says something, the other gets it.
    async function talk(alice, bob) {
        await expectMembers(alice, ['Alice', 'Bob']);
        await expectMembers(bob, ['Alice', 'Bob']);

        await say(alice, 'Hello Bob, this goes through nginx.');
        const fromAlice = messages(bob).locator('li.message', {
            hasText: 'Hello Bob, this goes through nginx.' });
        await fromAlice.waitFor();
        assert.equal(await fromAlice.locator('.who').textContent(), 'Alice');

        await say(bob, 'Hi Alice! <b>not bold</b>');
        const fromBob = messages(alice).locator('li.message', {
            hasText: 'Hi Alice! <b>not bold</b>' });
        await fromBob.waitFor();
        assert.equal(await fromBob.locator('.who').textContent(), 'Bob');
        assert.equal(await fromBob.locator('b').count(), 0, 'text, not HTML');

        // the sender sees its own message too, marked as its own
        await messages(alice).locator('li.message.mine',
            { hasText: 'Hello Bob' }).waitFor();
        assert.equal(await messages(alice).locator('li.message').count(), 2);
        assert.equal(await messages(bob).locator('li.message').count(), 2);
    }

    async function leave(page) {
        await page.getByRole('button', { name: 'Leave' }).click();
        await page.locator('#status[data-state="offline"]').waitFor();
    }

    // the requests a page sent to the Bayeux endpoint (not the page, the
    // scripts of the client)
    function bayeuxRequests(page) {
        return page.traffic.requests.filter((r) =>
            new URL(r.url).pathname.startsWith('/cometd'));
    }

    test('two people join, talk both ways, one leaves (long-polling)',
         async () => {
        problems = [];
        const url = withTransport(demo.url, 'long-polling');
        const alice = await person('Alice', url);
        const bob = await person('Bob', url);

        // the page is what it says it is
        assert.equal(await alice.title(), 'Chat — ngx_bayeux_module demo');
        assert.equal(await alice.locator('#room').isHidden(), true);

        await join(alice, 'Alice');
        await expectMembers(alice, ['Alice']);
        await messages(alice).getByText('You joined as Alice.').waitFor();
        assert.match(await alice.locator('#status').textContent(),
                     /Connected as Alice · long-polling/);

        await join(bob, 'Bob');
        // each learns about the other: Bob from Alice's "here"
        await messages(alice).getByText('Bob joined.').waitFor();
        assert.equal(await alice.locator('#members li.me').textContent(),
                     'Alice (you)');
        assert.equal(await bob.locator('#members li.me').textContent(),
                     'Bob (you)');

        await talk(alice, bob);

        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await alice.screenshot({ path: SCREENSHOT });

        // Bob leaves: Alice's list and log say so
        await leave(bob);
        await expectMembers(alice, ['Alice']);
        await messages(alice).getByText('Bob left.').waitFor();
        assert.equal(await bob.getByLabel('Your name').isVisible(), true);
        assert.match(await bob.locator('#status').textContent(),
                     /Not connected/);
        await bob.screenshot({
            path: SCREENSHOT.replace(/\.png$/, '-join.png') });

        await alice.screenshot({
            path: SCREENSHOT.replace(/\.png$/, '-left.png') });

        // and Alice goes on talking to the room
        await say(alice, 'Anyone there?');
        await messages(alice).locator('li.message',
            { hasText: 'Anyone there?' }).waitFor();

        for (const page of [alice, bob]) {
            const sent = bayeuxRequests(page);
            assert.ok(sent.length > 0);
            for (const r of sent) {
                assert.equal(r.method, 'POST', r.url);
            }
            assert.deepEqual(page.traffic.websockets, []);
        }
        await alice.context().close();
        await bob.context().close();
        assert.deepEqual(problems, []);
    });

    // ?reload=1: the page keeps its session across a reload (CometD's
    // ReloadExtension).  The reloaded page's CometD client is held back
    // (a route on cometd.js) until the old page's held connect failed in
    // the browser and Bob said something, which the reloaded page then
    // gets, once, without a second handshake; Bob sees Alice neither
    // leave nor join again.
    test('a reload keeps the session (?reload=1, long-polling)',
         async () => {
        problems = [];
        const url = withTransport(demo.url, 'long-polling') + '&reload=1';
        const alice = await person('Alice', url);
        const bob = await person('Bob', url);
        await join(alice, 'Alice');
        await join(bob, 'Bob');
        await expectMembers(alice, ['Alice', 'Bob']);
        await expectMembers(bob, ['Alice', 'Bob']);

        const connectFailed = alice.waitForEvent('requestfailed', (req) =>
            new URL(req.url()).pathname === '/cometd/connect');
        let heldBack = 0;
        await alice.route('**/lib/cometd/cometd.js', async (route) => {
            heldBack++;
            await connectFailed;
            await say(bob, 'said while Alice reloads');
            await messages(bob).locator('li.message.mine',
                { hasText: 'said while Alice reloads' }).waitFor();
            await route.continue();
        });
        await alice.reload({ waitUntil: 'domcontentloaded' });
        await alice.locator('#status[data-state="online"]').waitFor();
        assert.equal(heldBack, 1);

        await messages(alice).getByText('You are back as Alice: the page '
            + 'was reloaded, the session kept.').waitFor();
        const meanwhile = messages(alice).locator('li.message',
            { hasText: 'said while Alice reloads' });
        await meanwhile.waitFor();
        await expectMembers(alice, ['Alice', 'Bob']);
        assert.equal(await alice.locator('#room').isVisible(), true);

        // the session goes on, both ways
        await say(alice, 'back again');
        await messages(bob).locator('li.message',
            { hasText: 'back again' }).waitFor();
        await say(bob, 'welcome back');
        await messages(alice).locator('li.message',
            { hasText: 'welcome back' }).waitFor();
        assert.equal(await meanwhile.count(), 1, 'once');
        assert.equal(await messages(alice).locator('li.message').count(), 3);
        assert.equal(await messages(bob).getByText('Alice left.').count(), 0);
        assert.equal(await messages(bob).getByText('Alice joined.').count(),
                     0, 'Bob joined after her, and she did not again');
        const handshakes = alice.traffic.requests.filter((r) =>
            new URL(r.url).pathname === '/cometd/handshake');
        assert.equal(handshakes.length, 1, 'no handshake after the reload');

        // the Leave button still leaves at once; Bob leaves too, so that
        // no session of this test waits to expire in the next one's room
        await leave(alice);
        await expectMembers(bob, ['Bob']);
        await messages(bob).getByText('Alice left.').waitFor();
        await leave(bob);
        await alice.context().close();
        await bob.context().close();
        assert.deepEqual(problems, []);
    });

    // A tab that dies without a word (no pagehide, no /meta/disconnect):
    // its renderer crashes, the browser drops its connections.
    async function crash(page) {
        const cdp = await page.context().newCDPSession(page);
        const crashed = page.waitForEvent('crash', { timeout: 10000 });
        // never answered: the page is gone
        cdp.send('Page.crash').catch(() => {});
        await crashed;
    }

    // Three people on one transport: the members list from the
    // application (a remote call) and /presence as they come and go, a
    // private message that only its recipient gets.
    for (const transport of ['websocket', 'long-polling',
                             'callback-polling']) {
        test(`three people: members kept live, a private message to one `
             + `(${transport})`, async () => {
            problems = [];
            const url = withTransport(demo.url, transport);
            const alice = await person('Alice', url);
            const bob = await person('Bob', url);
            const carol = await person('Carol', url);

            await join(alice, 'Alice');
            assert.match(await alice.locator('#status').textContent(),
                         new RegExp(`Connected as Alice · ${transport}$`));
            await expectMembers(alice, ['Alice']);
            await join(bob, 'Bob');
            // Bob's list comes from the application, Alice's from
            // /presence
            await expectMembers(bob, ['Alice', 'Bob']);
            await expectMembers(alice, ['Alice', 'Bob']);
            await join(carol, 'Carol');
            for (const page of [alice, bob, carol]) {
                await expectMembers(page, ['Alice', 'Bob', 'Carol']);
            }
            await messages(alice).getByText('Carol joined.').waitFor();
            await messages(bob).getByText('Carol joined.').waitFor();
            await messages(carol).getByText('You joined as Carol.')
                .waitFor();
            assert.equal(await messages(carol).getByText(/ joined\.$/)
                .count(), 0, 'Carol: nobody joined after her');

            // Alice picks Bob in the list and writes to him alone
            await alice.getByRole('button', { name: 'Bob', exact: true })
                .click();
            await alice.locator('#private-to').getByText('Bob').waitFor();
            assert.equal(await alice.locator('#members button[aria-pressed='
                + '"true"]').textContent(), 'Bob');
            await say(alice, 'psst, for Bob only');
            const got = messages(bob).locator('li.message.private',
                { hasText: 'psst, for Bob only' });
            await got.waitFor();
            assert.equal(await got.locator('.who').textContent(), 'Alice');
            assert.equal(await got.locator('.tag').textContent(), 'private');
            const sent = messages(alice).locator('li.message.mine.private',
                { hasText: 'psst, for Bob only' });
            await sent.waitFor();
            assert.equal(await sent.locator('.tag').textContent(),
                         'private to Bob');

            // Bob answers; then Alice goes back to the room and writes to
            // everyone: Carol gets that, and never got the private ones
            await bob.getByRole('button', { name: 'Alice', exact: true })
                .click();
            await say(bob, 'got it, Alice');
            await messages(alice).locator('li.message.private',
                { hasText: 'got it, Alice' }).waitFor();
            await alice.getByRole('button', { name: 'Back to the room' })
                .click();
            assert.equal(await alice.locator('#private-to').isHidden(), true);
            await say(alice, 'hello everyone');
            for (const page of [bob, carol]) {
                await messages(page).locator('li.message',
                    { hasText: 'hello everyone' }).waitFor();
            }
            assert.equal(await messages(carol).locator('li.message')
                .count(), 1, 'Carol: the room message alone');
            assert.equal(await messages(carol).locator('li.message.private')
                .count(), 0);
            assert.equal(await messages(bob).locator('li.message.private')
                .count(), 2, 'Bob: the one he got, the one he sent');
            assert.equal(await messages(alice).locator('li.message.private')
                .count(), 2, 'Alice: the one she sent, the one she got');

            // Carol's tab dies without a disconnect: her session expires
            // (bayeux_max_interval 3s), and the others see her go
            await carol.locator('#status[data-state="online"]').waitFor();
            await crash(carol);
            await expectMembers(alice, ['Alice', 'Bob'], 20000);
            await expectMembers(bob, ['Alice', 'Bob'], 20000);
            await messages(alice).getByText('Carol left.').waitFor();
            await carol.context().close();

            // a fourth joins now: the application's list has no Carol
            const dave = await person('Dave', url);
            await join(dave, 'Dave');
            await expectMembers(dave, ['Alice', 'Bob', 'Dave']);

            // Bob leaves with the button (a disconnect): gone at once
            await leave(bob);
            await expectMembers(alice, ['Alice', 'Dave']);
            await expectMembers(dave, ['Alice', 'Dave']);
            await messages(alice).getByText('Bob left.').waitFor();

            for (const page of [alice, bob, dave]) {
                await page.context().close();
            }
            assert.deepEqual(problems, []);
        });
    }

    test('a name the application refuses, then one it lets in',
         async () => {
        problems = [];
        const eve = await person('Eve',
            withTransport(demo.url, 'long-polling'));

        // demo/app.js lets in letters, digits, spaces, "_" and "-" only
        await eve.getByLabel('Your name').fill('Eve <script>');
        await eve.getByRole('button', { name: 'Join' }).click();
        const error = eve.locator('#join-error');
        await error.getByText('Name refused').waitFor();
        assert.match(await error.textContent(),
                     /^Name refused: use 1 to 32 letters, digits, spaces/);
        assert.equal(await eve.locator('#room').isHidden(), true);
        assert.match(await eve.locator('#status').textContent(),
                     /Not connected/);

        // she may try again, on the same page
        await join(eve, 'Eve-2 Ünal');
        assert.equal(await error.isHidden(), true);
        assert.equal(await eve.locator('#room').isVisible(), true);
        await expectMembers(eve, ['Eve-2 Ünal']);
        await messages(eve).getByText('You joined as Eve-2 Ünal.').waitFor();
        await say(eve, 'in at last');
        await messages(eve).locator('li.message.mine',
            { hasText: 'in at last' }).waitFor();

        // the name went in the handshake's ext, once per attempt
        const handshakes = eve.traffic.requests.filter((r) =>
            new URL(r.url).pathname === '/cometd/handshake');
        assert.equal(handshakes.length, 2);
        assert.deepEqual(eve.traffic.handshakeExts,
                         [{ login: { name: 'Eve <script>' } },
                          { login: { name: 'Eve-2 Ünal' } }]);
        await leave(eve);
        await eve.context().close();
        assert.deepEqual(problems, []);
    });

    test('the same over websocket, the default (no ?transport=)',
         async () => {
        problems = [];
        const url = demo.url;
        const alice = await person('Alice', url);
        const bob = await person('Bob', url);

        await join(alice, 'Alice');
        assert.match(await alice.locator('#status').textContent(),
                     /Connected as Alice · websocket/);
        await join(bob, 'Bob');
        assert.match(await bob.locator('#status').textContent(),
                     /Connected as Bob · websocket/);
        await talk(alice, bob);
        await leave(bob);
        await expectMembers(alice, ['Alice']);

        // everything went over one websocket per page, nothing over HTTP
        const ws = demo.url.replace(/^http/, 'ws') + 'cometd';
        for (const page of [alice, bob]) {
            assert.deepEqual(page.traffic.websockets, [ws]);
            assert.deepEqual(bayeuxRequests(page), []);
        }
        await alice.context().close();
        await bob.context().close();
        assert.deepEqual(problems, []);
    });

    test('the same over callback-polling (?transport=callback-polling)',
         async () => {
        problems = [];
        const url = withTransport(demo.url, 'callback-polling');
        const alice = await person('Alice', url);
        const bob = await person('Bob', url);

        await join(alice, 'Alice');
        assert.match(await alice.locator('#status').textContent(),
                     /Connected as Alice · callback-polling/);
        await join(bob, 'Bob');
        await talk(alice, bob);
        await leave(bob);
        await expectMembers(alice, ['Alice']);

        // <script> elements: GET with jsonp= and message=, answered as
        // JavaScript
        for (const page of [alice, bob]) {
            const sent = bayeuxRequests(page);
            assert.ok(sent.length > 0);
            for (const r of sent) {
                assert.equal(r.method, 'GET', r.url);
                assert.equal(r.resourceType, 'script', r.url);
                const q = new URL(r.url).searchParams;
                assert.match(q.get('jsonp'), /^_cometd_jsonp_\d+$/);
                assert.ok(q.get('message'));
                assert.match(r.headers['content-type'], /javascript/);
            }
            assert.deepEqual(page.traffic.websockets, []);
        }
        await alice.context().close();
        await bob.context().close();
        assert.deepEqual(problems, []);
    });

    test('across origins: the page on one port, the endpoint on another '
         + '(Alice on long-polling, Bob on websocket)', async () => {
        problems = [];
        const origin = `http://127.0.0.1:${cross.port}`;
        const endpoint = `http://127.0.0.1:${cross.bayeuxPort}/cometd`;
        assert.equal(cross.url, `${origin}/?url=${endpoint}`);

        const alice = await person('Alice',
                                   withTransport(cross.url, 'long-polling'));
        const bob = await person('Bob', withTransport(cross.url, 'websocket'));

        await join(alice, 'Alice');
        assert.match(await alice.locator('#status').textContent(),
                     /Connected as Alice · long-polling/);
        await join(bob, 'Bob');
        assert.match(await bob.locator('#status').textContent(),
                     /Connected as Bob · websocket/);
        await talk(alice, bob);
        await leave(bob);
        await expectMembers(alice, ['Alice']);

        // Alice's requests went to the other origin, which allowed hers
        // (with credentials: the CometD client sends them)
        const sent = bayeuxRequests(alice);
        assert.ok(sent.length > 0);
        for (const r of sent) {
            assert.equal(new URL(r.url).origin,
                         `http://127.0.0.1:${cross.bayeuxPort}`);
            assert.equal(r.method, 'POST');
            assert.equal(r.headers['access-control-allow-origin'], origin);
            assert.equal(r.headers['access-control-allow-credentials'],
                         'true');
        }
        assert.deepEqual(bob.traffic.websockets,
                         [endpoint.replace(/^http/, 'ws')]);
        await alice.context().close();
        await bob.context().close();
        assert.deepEqual(problems, []);
    });

    test('across origins: a page of an origin not allowed cannot join',
         async () => {
        problems = [];
        // the same page and endpoint, but the page's origin is
        // http://localhost:<port>, which the endpoint does not list
        const url = cross.url.replace('//127.0.0.1:', '//localhost:');
        const eve = await person('Eve', url);
        await eve.getByLabel('Your name').fill('Eve');
        await eve.getByRole('button', { name: 'Join' }).click();
        await eve.locator('#join-error').getByText(
            'The chat server does not answer').waitFor({ timeout: 20000 });
        assert.equal(await eve.locator('#room').isHidden(), true);
        // the browser said why: the websocket upgrade refused (403), or
        // long-polling's requests refused by CORS
        assert.ok(problems.some((p) =>
            /CORS|Access-Control|Unexpected response code: 403/.test(p)),
                  problems.join('\n'));
        await eve.context().close();
    });
});
