-- wrk script for bench/run --wrk: the handshake bayeux-bench's handshake
-- scenario posts, byte for byte the same body and content type, on
-- keep-alive connections, one request in flight per connection.
--
--   wrk -t1 -c64 -d5s -s bench/wrk-handshake.lua \
--       http://127.0.0.1:PORT/cometd/handshake
--
-- With WRK_CHECK=1 in the environment it also counts the replies saying
-- "successful":true and prints "wrk_ok N" after wrk's own report, so that
-- a server answering errors fast is not mistaken for a fast one.  wrk
-- then hands every body to Lua, which costs wrk a third of its rate:
-- bench/run checks during the warm-up and measures without it.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json;charset=UTF-8"
wrk.body = '[{"channel":"/meta/handshake","version":"1.0",'
    .. '"supportedConnectionTypes":["websocket","long-polling"],'
    .. '"id":"1"}]'

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    ok = 0
end

if os.getenv("WRK_CHECK") == "1" then
    function response(status, headers, body)
        if status == 200 and body:find('"successful":true', 1, true) then
            ok = ok + 1
        end
    end
end

function done(summary, latency, requests)
    local n = 0

    if response == nil then
        return
    end

    for _, t in ipairs(threads) do
        n = n + t:get("ok")
    end

    io.write(string.format("wrk_ok %d\n", n))
end
