// The chat demo in a real browser: Debian's chromium, headless, driven by
// playwright-core (no browser download).  util/demo serves the page on a
// free port; two people (two browser contexts) join, talk both ways, and
// one leaves.  A screenshot goes to build/demo-screenshot.png.
//
// Without chromium this skips, or fails under CI=true.  CHROMIUM names
// another binary (default /usr/bin/chromium).

import { after, before, describe, test } from 'node:test';
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

describe('chat demo in chromium', {
    skip: missing || false,
    timeout: 120000,
}, () => {
    let demo;
    let demoDir;
    let demoOutput = '';
    let browser;
    let url;
    const problems = [];        // console errors, page errors

    before(async () => {
        const port = await freePort();
        demoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayeux-demo-'));
        url = `http://127.0.0.1:${port}/`;
        demo = spawn(path.join(REPO, 'util', 'demo'), [], {
            env: { ...process.env, DEMO_PORT: String(port), DEMO_DIR: demoDir },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        demo.stdout.on('data', (d) => { demoOutput += d; });
        demo.stderr.on('data', (d) => { demoOutput += d; });

        // util/demo says where the chat is, then serves it
        const deadline = Date.now() + 60000;
        for (;;) {
            if (demo.exitCode !== null) {
                throw new Error(`util/demo exited: ${demoOutput}`);
            }
            if (demoOutput.includes(url)) {
                try {
                    const res = await fetch(url);
                    if (res.ok) {
                        break;
                    }
                } catch { /* not yet */ }
            }
            if (Date.now() > deadline) {
                throw new Error(`util/demo did not serve ${url}: ${demoOutput}`);
            }
            await sleep(100);
        }

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

    after(async () => {
        if (browser) {
            await browser.close();
        }
        if (demo && demo.exitCode === null) {
            const exited = new Promise((r) => demo.once('exit', r));
            demo.kill('SIGTERM');
            await exited;
        }
        if (demoDir) {
            fs.rmSync(demoDir, { recursive: true, force: true });
        }
    });

    async function person(name) {
        const context = await browser.newContext({
            viewport: { width: 1000, height: 720 },
        });
        const page = await context.newPage();
        page.on('console', (m) => {
            if (m.type() === 'error') {
                problems.push(`${name}: console: ${m.text()}`);
            }
        });
        page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
        page.on('response', (r) => {
            if (r.status() >= 400) {
                problems.push(`${name}: ${r.status()} for ${r.url()}`);
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
        await page.getByRole('textbox', { name: 'Message', exact: true }).fill(text);
        await page.getByRole('button', { name: 'Send' }).click();
    }

    async function expectMembers(page, names) {
        await page.waitForFunction((want) => {
            const got = [...document.querySelectorAll('#members li')]
                .map((li) => li.firstChild.textContent);
            return JSON.stringify(got) === JSON.stringify(want);
        }, names, { timeout: 10000 }).catch(async () => {
            const got = await members(page).allTextContents();
            assert.deepEqual(got, names, 'members list');
        });
    }

    test('two people join, talk both ways, one leaves', async () => {
        const alice = await person('Alice');
        const bob = await person('Bob');

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
        await expectMembers(alice, ['Alice', 'Bob']);
        await expectMembers(bob, ['Alice', 'Bob']);
        await messages(alice).getByText('Bob joined.').waitFor();
        assert.equal(await alice.locator('#members li.me').textContent(),
                     'Alice (you)');
        assert.equal(await bob.locator('#members li.me').textContent(),
                     'Bob (you)');

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

        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await alice.screenshot({ path: SCREENSHOT });

        // Bob leaves: Alice's list and log say so
        await bob.getByRole('button', { name: 'Leave' }).click();
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

        assert.deepEqual(problems, []);
    });
});
