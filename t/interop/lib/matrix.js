// The combinations the interop suite runs: a client's transports times the
// two engines.
//
//   memory   bayeux_engine memory, worker_processes 1
//   redis    bayeux_engine redis, worker_processes 2, on a redis-server of
//            the test process's own (redis.js), each Server with a key
//            prefix of its own
//
// The long message exchange sends 10,000 messages each way in every
// combination (about 75 s for the whole suite on two idle cores);
// TEST_INTEROP_MESSAGES=2000 sends fewer, on a slow machine.  The test
// names say how many.
//
// TEST_INTEROP_ONLY="websocket/redis long-polling/memory" runs only those
// combinations (transport/engine; "redis" or "websocket" alone match
// every combination with it).  Without redis-server the redis
// combinations are skipped, and fail under CI=true.

import { Redis, redisBinary } from './redis.js';

export const ENGINES = ['memory', 'redis'];

export const EXCHANGE = Number(process.env.TEST_INTEROP_MESSAGES) || 10000;

// The servers of the exchange: no limit on a session's queue (CometD's own
// default, maxQueue -1).  A peer publishes its thousands of messages in
// one go, and while it does, it is too busy to send its next /meta/connect
// as soon as the previous one returns; the other peer's messages to it
// wait in its queue meanwhile.  The default bounds (bayeux_max_queue,
// bayeux_max_queue_size) hold a burst like this one; an exchange that
// went over them would end the session (t/040-queue.t tests that).
export const EXCHANGE_QUEUE = 'bayeux_max_queue 0; bayeux_max_queue_size 0;';

const CI = process.env.CI === 'true';
const only = (process.env.TEST_INTEROP_ONLY || '').split(/[\s,]+/)
    .filter(Boolean);

function selected(transport, engine) {
    if (!only.length) {
        return true;
    }
    return only.some((o) => o === `${transport}/${engine}`
                            || o === transport || o === engine);
}

const redisMissing = redisBinary() ? null
    : 'redis-server is not installed (apt-get install redis-server)';

// [{ transport, engine, name, messages, skip }] for the transports given.
export function matrix(transports) {
    const list = [];
    for (const transport of transports) {
        for (const engine of ENGINES) {
            if (!selected(transport, engine)) {
                continue;
            }
            const skip = engine === 'redis' && redisMissing && !CI
                ? redisMissing : false;
            list.push({
                transport,
                engine,
                name: `${transport}, ${engine} engine`
                      + (engine === 'redis' ? ' (2 workers)' : ''),
                messages: EXCHANGE,
                skip,
            });
        }
    }
    return list;
}

// "10,000"
export function count(n) {
    return n.toLocaleString('en-US');
}

let redis = null;
let starting = null;

// The Server options for an engine (see server.js): the redis engine gets
// the test process's Redis, started on first use.
export async function engineOptions(engine) {
    if (engine !== 'redis') {
        return { engine: 'memory' };
    }
    if (redisMissing) {
        throw new Error(redisMissing);
    }
    if (!redis) {
        if (!starting) {
            const r = new Redis();
            starting = r.start().then(() => { redis = r; });
        }
        await starting;
    }
    return { engine: 'redis', redis };
}

// For an after() hook at the top of a test file.
export async function stopRedis() {
    if (starting) {
        await starting.catch(() => {});
    }
    if (redis) {
        await redis.stop();
    }
    redis = null;
    starting = null;
}

// What the server's access log says about the requests of one test
// server: { post, get, upgrades, other } (requests to the Bayeux location;
// a websocket is logged once upgraded, as a GET answered 101; rawConnect
// in scenarios.js marks its POSTs with ?raw=1, not counted).
export function requestsSeen(server) {
    const seen = { post: 0, get: 0, upgrades: 0, other: [] };
    for (const r of server.accessLog()) {
        if (r.raw) {
            continue;
        }
        if (r.method === 'POST' && r.status === 200) {
            seen.post += 1;
        } else if (r.method === 'GET' && r.status === 101
                   && /^websocket$/i.test(r.upgrade)) {
            seen.upgrades += 1;
        } else if (r.method === 'GET' && r.status === 200) {
            seen.get += 1;
        } else {
            seen.other.push(r.line || `${r.method} ${r.uri} ${r.status}`);
        }
    }
    return seen;
}

// How many websockets the server has closed (its error log, level info).
export function websocketsClosed(server) {
    return (server.errorLog().match(/bayeux: websocket closed/g) || [])
        .length;
}
