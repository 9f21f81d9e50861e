# callback-polling (JSONP) and cross-origin requests.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
    }
CONF

run_tests();

__DATA__

=== TEST 1: a handshake over callback-polling
--- request
GET /cometd/handshake?jsonp=_cometd_jsonp_0&message=%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%2C%22version%22%3A%221.0%22%2C%22id%22%3A%221%22%2C%22supportedConnectionTypes%22%3A%5B%22callback-polling%22%5D%7D%5D
--- error_code: 200
--- response_headers
Content-Type: text/javascript;charset=UTF-8
X-Content-Type-Options: nosniff
--- response_body_like: ^/\*\*/_cometd_jsonp_0\(\[\{"id":"1","channel":"/meta/handshake","successful":true,.*"clientId":"[0-9a-f]{40}".*\}\]\);$



=== TEST 2: no jsonp parameter: the default callback name
--- request
GET /cometd/?message=[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: ^/\*\*/jsonpcallback\(\[\{"channel":"/meta/handshake","successful":true



=== TEST 3: hostile callback names are refused, never reflected; a name is an identifier, as CometD's and Faye's clients make them
--- request eval
[
  'GET /cometd/?jsonp=alert(1)&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=a%3Balert(document.cookie)%2F%2F&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=%3Cscript%3E&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=' . ('a' x 65) . '&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=document.write&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=_cometd.cb-1&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=a-b&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=1cb&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=' . ('a' x 64) . '&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=__jsonp1__&message=[{"channel":"/meta/handshake"}]',
  'GET /cometd/?jsonp=$cb_9&message=[{"channel":"/meta/handshake"}]',
]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 200, 200, 200]
--- response_body_like eval
[qr/^invalid jsonp callback name\n$/, qr/^invalid jsonp callback name\n$/,
 qr/^invalid jsonp callback name\n$/, qr/^invalid jsonp callback name\n$/,
 qr/^invalid jsonp callback name\n$/, qr/^invalid jsonp callback name\n$/,
 qr/^invalid jsonp callback name\n$/, qr/^invalid jsonp callback name\n$/,
 qr/^invalid jsonp callback name\n$/, qr{^/\*\*/a{64}\(\[},
 qr{^/\*\*/__jsonp1__\(\[}, qr{^/\*\*/\$cb_9\(\[.*\]\);$}]



=== TEST 4: no message parameter, bad JSON
--- request eval
['GET /cometd/?jsonp=cb', 'GET /cometd/?jsonp=cb&message=%5B%7B']
--- error_code eval
[400, 400]
--- response_body eval
["no message parameter\n", "malformed JSON at byte 2: premature EOF\n"]



=== TEST 5: a held connect over callback-polling, released by a delivery
--- bayeux
my $escape = sub {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf("%%%02X", ord $1)/ge;
    return $s;
};
my $c = client(connection_type => 'callback-polling');
my $h = $c->handshake;
my $cid = $h->{clientId};
$c->subscribe('/j');
my $get = sub {
    my ($msgs) = @_;
    my $q = 'jsonp=cb&message=' . $escape->(JSON::PP::encode_json($msgs));
    return $c->request_start(method => 'GET', suffix => "/connect?$q");
};
my $res = $c->request_finish($get->([ { channel => '/meta/connect', clientId => $cid,
                                        connectionType => 'callback-polling' } ]));
like($res->body, qr/^\/\*\*\/cb\(\[\{"channel":"\/meta\/connect","successful":true/, 'first connect');
my $held = $get->([ { channel => '/meta/connect', clientId => $cid,
                      connectionType => 'callback-polling' } ]);
sleep 0.3;
my $p = client(); $p->handshake; $p->publish('/j', 'js');
$res = $c->request_finish($held, timeout => 5);
like($res->body, qr/^\/\*\*\/cb\(\[\{"channel":"\/j","data":"js","id":"\d+"\},\{"channel":"\/meta\/connect"/,
     'delivery wrapped in the callback');
cmp_ok($res->elapsed, '<', 1.5, 'released by the delivery');
my $lp = $c->connect;
is($lp->{reply}{error}, '400::unsupported_connection_type',
   'a callback-polling connect sent over POST is refused');



=== TEST 6: CORS: an allowed origin gets the headers, preflight answered
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://app.example http://localhost:3000;
        bayeux_allow_credentials on;
    }
--- request eval
[
  "OPTIONS /cometd/handshake\n",
  "POST /cometd/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- more_headers
Origin: https://app.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: content-type
--- error_code eval
[204, 200]
--- response_headers eval
[
  "Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Methods: POST, GET, OPTIONS
Access-Control-Allow-Headers: content-type
Access-Control-Allow-Credentials: true
Access-Control-Max-Age: 86400",
  "Access-Control-Allow-Origin: https://app.example
Access-Control-Allow-Credentials: true
Vary: Origin",
]



=== TEST 7: CORS: another origin gets none
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://app.example;
    }
--- request eval
[
  "OPTIONS /cometd/handshake\n",
  "POST /cometd/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- more_headers
Origin: https://evil.example
--- error_code eval
[204, 200]
--- response_headers eval
[
  "!Access-Control-Allow-Origin\n!Access-Control-Allow-Methods",
  "!Access-Control-Allow-Origin\n!Access-Control-Allow-Credentials",
]



=== TEST 8: CORS: "*" allows any origin; without credentials none are claimed
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin *;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- more_headers
Origin: http://anything.example:8081
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: http://anything.example:8081
!Access-Control-Allow-Credentials



=== TEST 9: bad bayeux_allow_origin and bayeux_transports values
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin app.example;
    }
--- must_die
--- error_log
invalid origin "app.example" in "bayeux_allow_origin": an origin is "*" or "scheme://host[:port]"



=== TEST 10: unknown transport
--- config
    location /cometd {
        bayeux;
        bayeux_transports long-polling iframe;
    }
--- must_die
--- error_log
unknown bayeux transport "iframe"; known: websocket, long-polling, callback-polling

=== TEST 11: the request line logs show has no query (it carries the clientId)
--- http_config
    log_format line '$request|$args';
--- config
    location /cometd {
        bayeux;
        access_log logs/line.log line;
    }
--- bayeux
my $c = $server->client(connection_type => 'callback-polling');
my $res = $c->post('/handshake', [ { channel => '/meta/handshake',
                                      version => '1.0',
                                      supportedConnectionTypes =>
                                          ['callback-polling'] } ],
                   jsonp => 'cb');
like $res->body, qr/"successful":true/, 'handshake';
sleep 0.2;
open my $fh, '<', $server->root . '/logs/line.log' or die $!;
my ($line) = <$fh>;
like $line, qr{^GET /cometd/handshake\?\.\.\. HTTP/1\.1\|jsonp=cb&message=},
     '$request without the query, $args as sent';
--- no_error_log
[error]
