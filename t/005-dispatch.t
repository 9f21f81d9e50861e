# Which transport serves which request: the method, and the upgrade asked
# for; and bayeux_transports, whose order of arguments is not the order
# a handshake offers.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => 'location /cometd { bayeux; }');

run_tests();

__DATA__

=== TEST 1: a GET that asks for another upgrade than websocket gets 400
--- request
GET /cometd/?message=[{"channel":"/meta/handshake","version":"1.0"}]
--- more_headers
Connection: Upgrade
Upgrade: h2c
--- error_code: 400
--- error_log
bayeux: unsupported upgrade "h2c"



=== TEST 2: a POST that asks for an upgrade is long-polling (curl --http2 asks for h2c)
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- more_headers
Connection: Upgrade, HTTP2-Settings
Upgrade: h2c
HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA
Content-Type: application/json
--- error_code: 200
--- response_body_like: ^\[\{"channel":"/meta/handshake","successful":true,
--- no_error_log
unsupported upgrade



=== TEST 3: HEAD is none of the transports' methods
--- request
HEAD /cometd/
--- error_code: 405



=== TEST 4: supportedConnectionTypes in the order of preference, whatever the order of bayeux_transports
--- config
    location /cometd {
        bayeux;
        bayeux_transports callback-polling long-polling websocket;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "supportedConnectionTypes":\["websocket","long-polling","callback-polling"\]



=== TEST 5: bayeux_transports twice in one place
--- config
    location /cometd {
        bayeux;
        bayeux_transports websocket;
        bayeux_transports long-polling;
    }
--- must_die
--- error_log
"bayeux_transports" directive is duplicate



=== TEST 6: transport names are exact
--- config
    location /cometd {
        bayeux;
        bayeux_transports WebSocket;
    }
--- must_die
--- error_log
unknown bayeux transport "WebSocket"; known: websocket, long-polling, callback-polling



=== TEST 7: an inner level replaces an outer one
--- config
    bayeux_transports long-polling;
    location /cometd {
        bayeux;
    }
    location /ws {
        bayeux;
        bayeux_transports websocket;
    }
--- request eval
[
  "POST /cometd/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
  "POST /ws/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/"supportedConnectionTypes":\["long-polling"\]/,
 qr/"supportedConnectionTypes":\["websocket"\]/]
