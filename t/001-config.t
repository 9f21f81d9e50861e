# Configuration: directives, defaults, and what `nginx -t` refuses.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

run_tests();

__DATA__

=== TEST 1: a bayeux location with every directive set
--- config
    location /cometd {
        bayeux;
        bayeux_engine memory;
        bayeux_timeout 5s;
        bayeux_interval 100ms;
        bayeux_max_interval 20s;
        bayeux_max_queue 10;
        bayeux_max_batch 50;
        bayeux_broadcast_to_publisher off;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "advice":\{"reconnect":"retry","interval":100,"timeout":5000,"maxInterval":20000\}
--- no_error_log
[error]
[alert]



=== TEST 2: defaults are advertised: timeout 30s, interval 0, maxInterval 10s
--- config
    location /cometd {
        bayeux;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "advice":\{"reconnect":"retry","interval":0,"timeout":30000,"maxInterval":10000\}



=== TEST 3: directives inherited from the server level
--- config
    bayeux_timeout 7s;
    bayeux_interval 1s;
    location /cometd {
        bayeux;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "interval":1000,"timeout":7000,



=== TEST 4: two locations are two Bayeux servers
--- config
    location /a { bayeux; bayeux_timeout 1s; }
    location /b { bayeux; bayeux_timeout 2s; }
--- request eval
[
  "POST /a/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
  "POST /b/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/"timeout":1000,/, qr/"timeout":2000,/]



=== TEST 5: POST, GET (callback-polling, websocket) and OPTIONS only
--- config
    location /cometd { bayeux; }
--- request
PUT /cometd/
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 405



=== TEST 6: bad time value names the directive
--- config
    location /cometd { bayeux; bayeux_timeout forever; }
--- must_die
--- error_log
"bayeux_timeout" directive invalid value



=== TEST 7: bayeux_max_interval must be positive
--- config
    location /cometd { bayeux; bayeux_max_interval 0; }
--- must_die
--- error_log
"bayeux_max_interval" directive must be greater than 0



=== TEST 8: bayeux_max_batch must be at least 1
--- config
    location /cometd { bayeux; bayeux_max_batch 0; }
--- must_die
--- error_log
"bayeux_max_batch" directive must be between 1 and 1000000



=== TEST 9: bayeux_max_queue is a number
--- config
    location /cometd { bayeux; bayeux_max_queue many; }
--- must_die
--- error_log
"bayeux_max_queue" directive invalid number



=== TEST 10: bayeux_max_queue_size is a size
--- config
    location /cometd { bayeux; bayeux_max_queue_size lots; }
--- must_die
--- error_log
"bayeux_max_queue_size" directive invalid value



=== TEST 11: bayeux_timestamp is on or off
--- config
    location /cometd { bayeux; bayeux_timestamp yes; }
--- must_die
--- error_log
invalid value "yes" in "bayeux_timestamp" directive, it must be "on" or "off"



=== TEST 12: unknown engine
--- config
    location /cometd { bayeux; bayeux_engine postgres; }
--- must_die
--- error_log
unknown bayeux engine "postgres"



=== TEST 13: bayeux takes no argument
--- config
    location /cometd { bayeux on; }
--- must_die
--- error_log
invalid number of arguments in "bayeux" directive



=== TEST 14: bayeux only in a location
--- config
    bayeux;
    location /cometd { }
--- must_die
--- error_log
"bayeux" directive is not allowed here



=== TEST 15: bayeux twice in one location
--- config
    location /cometd { bayeux; bayeux; }
--- must_die
--- error_log
"bayeux" directive is duplicate



=== TEST 16: the memory engine refuses several workers, and says what to do
--- skip_valgrind: valgrind runs nginx as one process
--- workers: 2
--- config
    location /cometd { bayeux; }
--- must_die
--- error_log
bayeux_engine memory in location "/cometd" keeps its state in one worker process, but worker_processes is 2: use "worker_processes 1;" or the Redis engine



=== TEST 17: a conflicting content handler
--- config
    location /cometd { proxy_pass http://127.0.0.1:1; bayeux; }
--- must_die
--- error_log
"bayeux" directive conflicts with another content handler in this location



=== TEST 18: bayeux_max_channels must be at least 1
--- config
    location /cometd { bayeux; bayeux_max_channels 0; }
--- must_die
--- error_log
"bayeux_max_channels" directive must be between 1 and 1000000



=== TEST 19: bayeux_max_subscriptions must be at least 1
--- config
    location /cometd { bayeux; bayeux_max_subscriptions 0; }
--- must_die
--- error_log
"bayeux_max_subscriptions" directive must be between 1 and 100000000



=== TEST 20: bayeux_max_channels is a number
--- config
    location /cometd { bayeux; bayeux_max_channels all; }
--- must_die
--- error_log
"bayeux_max_channels" directive invalid number



=== TEST 21: bayeux_max_channels and bayeux_max_subscriptions inherited
--- config
    bayeux_max_channels 2;
    location /cometd {
        bayeux;
        bayeux_max_subscriptions 2;
    }
--- bayeux
my $c = client();
$c->handshake;
my $cid = $c->client_id;
my $res = $c->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => '1',
      subscription => [ '/a', '/b', '/c' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '2',
      subscription => [ '/a', '/b' ] },
    { channel => '/meta/subscribe', clientId => $cid, id => '3',
      subscription => '/c' },
]);
is_deeply([ map { $_->{error} // 'ok' } @{ $res->{messages} } ],
          [ '400::too_many_channels', 'ok', '403::too_many_subscriptions' ],
          'both limits apply');



=== TEST 22: bayeux_websocket_max_output is a size of at least 1k
--- config
    location /cometd { bayeux; bayeux_websocket_max_output 100; }
--- must_die
--- error_log
"bayeux_websocket_max_output" directive must be between 1024 and 1073741824



=== TEST 23: bayeux_websocket_max_output is a size
--- config
    location /cometd { bayeux; bayeux_websocket_max_output lots; }
--- must_die
--- error_log
"bayeux_websocket_max_output" directive invalid value



=== TEST 24: bayeux_allow_origin * with bayeux_allow_credentials on
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin *;
        bayeux_allow_credentials on;
    }
--- must_die
--- error_log
"bayeux_allow_origin *" cannot be used with "bayeux_allow_credentials on" in location "/cometd": browsers refuse credentials for any origin; list the origins instead



=== TEST 25: the same combination across levels, as merged
--- config
    bayeux_allow_origin https://app.example *;
    location /cometd {
        bayeux;
        bayeux_allow_credentials on;
    }
--- must_die
--- error_log
"bayeux_allow_origin *" cannot be used with "bayeux_allow_credentials on" in location "/cometd": browsers refuse credentials for any origin; list the origins instead



=== TEST 26: credentials at http level, "*" in the location
--- http_config
    bayeux_allow_credentials on;
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin *;
    }
--- must_die
--- error_log
"bayeux_allow_origin *" cannot be used with "bayeux_allow_credentials on" in location "/cometd": browsers refuse credentials for any origin; list the origins instead



=== TEST 27: credentials with listed origins, or "*" without credentials
--- config
    bayeux_allow_credentials on;
    location /cometd {
        bayeux;
        bayeux_allow_origin https://app.example;
    }
    location /open {
        bayeux;
        bayeux_allow_origin *;
        bayeux_allow_credentials off;
    }
--- request
POST /open/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200



=== TEST 28: bayeux_trust_client_session takes on or off
--- config
    location /cometd {
        bayeux;
        bayeux_trust_client_session yes;
    }
--- must_die
--- error_log
invalid value "yes" in "bayeux_trust_client_session" directive, it must be "on" or "off"



=== TEST 29: bayeux_trust_client_session at every level
--- http_config
    bayeux_trust_client_session on;
--- config
    bayeux_trust_client_session off;
    location /cometd {
        bayeux;
        bayeux_trust_client_session on;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
