# What `nginx -t` refuses or warns about that it once accepted silently:
# an origin with a path, "bayeux" beside another content handler or a
# "return", an exact location, an empty Redis prefix, the websocket idle
# timeout, and the BAYEUX_BROWSER cookie's attributes (Set-Cookie exact).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

run_tests();

__DATA__

=== TEST 1: an origin with a trailing slash never matches a browser's Origin
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://example.com/;
    }
--- must_die
--- error_log
invalid origin "https://example.com/" in "bayeux_allow_origin": an origin is "*" or "scheme://host[:port]", without a path



=== TEST 2: nor does one with a path or a query
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://a.example https://example.com:8443/app?x;
    }
--- must_die
--- error_log
invalid origin "https://example.com:8443/app?x" in "bayeux_allow_origin"



=== TEST 3: an origin without a scheme
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin example.com:443;
    }
--- must_die
--- error_log
invalid origin "example.com:443" in "bayeux_allow_origin"



=== TEST 4: origins as browsers send them are accepted, with a port too
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://example.com http://127.0.0.1:8080 *;
    }
--- request
OPTIONS /cometd/handshake
--- more_headers
Origin: http://127.0.0.1:8080
Access-Control-Request-Method: POST
--- response_headers
Access-Control-Allow-Origin: http://127.0.0.1:8080
--- no_error_log
[emerg]
[warn]



=== TEST 5: proxy_pass after bayeux would answer instead: refused
--- config
    location /cometd {
        bayeux;
        proxy_pass http://127.0.0.1:1;
    }
--- must_die
--- error_log
"bayeux" in location "/cometd" conflicts with another content handler in this location (proxy_pass, fastcgi_pass



=== TEST 6: fastcgi_pass after bayeux, in a nested location
--- config
    location / {
        location /cometd {
            bayeux;
            fastcgi_pass 127.0.0.1:1;
        }
    }
--- must_die
--- error_log
"bayeux" in location "/cometd" conflicts with another content handler



=== TEST 7: a return in the location answers first: refused
--- config
    location /cometd {
        bayeux;
        return 204;
    }
--- must_die
--- error_log
"bayeux" in location "/cometd" never runs: "return" in the same location answers every request first



=== TEST 8: a return before bayeux, after other rewrite directives
--- config
    location /cometd {
        set $x 1;
        rewrite ^/cometd/old$ /cometd/ break;
        return 403;
        bayeux;
    }
--- must_die
--- error_log
"bayeux" in location "/cometd" never runs



=== TEST 9: a return inside an if is a condition, not a mistake
--- config
    location /cometd {
        bayeux;
        if ($arg_closed) {
            return 403;
        }
        set $y 2;
    }
--- request eval
[
  "POST /cometd/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
  "POST /cometd/handshake?closed=1\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- error_code eval
[200, 403]
--- no_error_log
[emerg]



=== TEST 10: a return after an if block is still refused
--- config
    location /cometd {
        bayeux;
        if ($arg_x) {
            set $y 1;
        }
        return 200;
    }
--- must_die
--- error_log
"bayeux" in location "/cometd" never runs



=== TEST 11: an exact location: warned, naming the prefix location to use
--- config
    location = /cometd {
        bayeux;
    }
--- request
POST /cometd
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- error_log
"bayeux" in the exact location "= /cometd": CometD clients post to "/cometd/handshake", "/cometd/connect", ..., which it does not match; use a prefix location, "location /cometd"



=== TEST 12: a prefix location is not warned about
--- config
    location /cometd {
        bayeux;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- no_error_log
[warn]



=== TEST 13: an empty Redis prefix is refused
--- config
    location /cometd {
        bayeux;
        bayeux_engine redis;
        bayeux_redis_prefix '';
    }
--- must_die
--- error_log
"bayeux_redis_prefix" directive must not be empty



=== TEST 14: bayeux_timeout alone: the websocket idle timeout follows it
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 60s;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "timeout":60000,
--- no_error_log
[emerg]



=== TEST 15: ... also when bayeux_timeout is set at the server level
--- config
    bayeux_timeout 120s;
    bayeux_interval 5s;
    location /cometd {
        bayeux;
    }
    location /other {
        bayeux;
        bayeux_timeout 90s;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "timeout":120000,



=== TEST 16: an explicit idle timeout no longer than bayeux_timeout is refused, naming both
--- http_config
    bayeux_websocket_idle_timeout 45s;
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 60s;
    }
--- must_die
--- error_log
"bayeux_websocket_idle_timeout" (45000ms) must be longer than "bayeux_timeout" (60000ms)



=== TEST 17: the cookie by default: Path and HttpOnly only
--- config
    location /cometd {
        bayeux;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- response_headers_like
Set-Cookie: ^BAYEUX_BROWSER=[0-9a-f]{32}; Path=/; HttpOnly$



=== TEST 18: bayeux_browser_cookie_secure on
--- config
    location /cometd {
        bayeux;
        bayeux_browser_cookie_secure on;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- response_headers_like
Set-Cookie: ^BAYEUX_BROWSER=[0-9a-f]{32}; Path=/; HttpOnly; Secure$



=== TEST 19: SameSite=Strict and Lax, inherited from the server level
--- config
    bayeux_browser_cookie_samesite strict;
    location /a {
        bayeux;
    }
    location /b {
        bayeux;
        bayeux_browser_cookie_samesite lax;
    }
--- request eval
[
  "POST /a/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
  "POST /b/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- response_headers_like eval
[
  'Set-Cookie: ^BAYEUX_BROWSER=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Strict$',
  'Set-Cookie: ^BAYEUX_BROWSER=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Lax$',
]



=== TEST 20: SameSite=None with Secure, Partitioned
--- config
    location /cometd {
        bayeux;
        bayeux_browser_cookie_secure on;
        bayeux_browser_cookie_samesite none;
        bayeux_browser_cookie_partitioned on;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- response_headers_like
Set-Cookie: ^BAYEUX_BROWSER=[0-9a-f]{32}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned$



=== TEST 21: SameSite=None without Secure is refused
--- config
    location /cometd {
        bayeux;
        bayeux_browser_cookie_samesite none;
    }
--- must_die
--- error_log
"bayeux_browser_cookie_samesite none" requires "bayeux_browser_cookie_secure on" in location "/cometd"



=== TEST 22: Partitioned without Secure is refused
--- http_config
    bayeux_browser_cookie_partitioned on;
--- config
    location /cometd {
        bayeux;
    }
--- must_die
--- error_log
"bayeux_browser_cookie_partitioned on" requires "bayeux_browser_cookie_secure on" in location "/cometd"



=== TEST 23: an unknown SameSite value
--- config
    location /cometd {
        bayeux;
        bayeux_browser_cookie_samesite loose;
    }
--- must_die
--- error_log
invalid value "loose" in "bayeux_browser_cookie_samesite"; known: off, strict, lax, none
