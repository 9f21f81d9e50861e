# /meta/handshake, request forms (JSON, form parameter, chunked) and the
# shape of replies.

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

=== TEST 1: handshake reply, exactly
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling","callback-polling"],"id":"1"}]
--- more_headers
Content-Type: application/json;charset=UTF-8
--- error_code: 200
--- response_headers
Content-Type: application/json;charset=UTF-8
--- response_body_like: ^\[\{"id":"1","channel":"/meta/handshake","successful":true,"version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":\["websocket","long-polling","callback-polling"\],"clientId":"[0-9a-f]{40}","advice":\{"reconnect":"retry","interval":0,"timeout":2000,"maxInterval":10000\}\}\]$
--- no_error_log
[error]



=== TEST 2: a single message, not in an array; numeric id echoed as a number
--- request
POST /cometd/handshake
{"channel":"/meta/handshake","version":"1.0","id":42}
--- error_code: 200
--- response_body_like: ^\[\{"id":42,"channel":"/meta/handshake","successful":true,



=== TEST 3: the form parameter message= (CometD accepts it)
--- request
POST /cometd/handshake
message=%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%2C%22version%22%3A%221.0%22%2C%22id%22%3A%22f%22%7D%5D
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body_like: ^\[\{"id":"f","channel":"/meta/handshake","successful":true,



=== TEST 4: form parameter among others, with + for blanks
--- request
POST /cometd/handshake
a=1&message=[{"channel":"/meta/handshake","version":"1.0","id":"a+b"}]&z=2
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body_like: ^\[\{"id":"a b","channel":"/meta/handshake","successful":true,



=== TEST 5: a JSON body sent with a form type (curl -d)
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0","id":"c"}]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 200
--- response_body_like: ^\[\{"id":"c","channel":"/meta/handshake","successful":true,



=== TEST 6: chunked body without Content-Length (the Node CometD client)
--- raw_request eval
my @pieces = ('[{"channel":"/me', 'ta/handshake","version":"1.', '0","id":7}]');
"POST /cometd/handshake HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
. join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } @pieces)
. "0\r\n\r\n"
--- error_code: 200
--- response_body_like: ^\[\{"id":7,"channel":"/meta/handshake","successful":true,



=== TEST 7: no common connection type
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["iframe"],"id":"1"}]
--- error_code: 200
--- response_body chomp
[{"id":"1","channel":"/meta/handshake","successful":false,"error":"400::unsupported_connection_types","supportedConnectionTypes":["websocket","long-polling","callback-polling"],"advice":{"reconnect":"none"}}]



=== TEST 8: every handshake gets a different clientId of 160 bits
--- bayeux
my %seen;
for (1 .. 50) {
    my $c = client();
    my $r = $c->handshake;
    ok($r->{successful}, 'handshake') or last;
    like($r->{clientId}, qr/^[0-9a-f]{40}$/, '40 hex digits');
    $seen{ $r->{clientId} }++;
}
is(scalar keys %seen, 50, '50 distinct clientIds');



=== TEST 9: ext of a handshake is not echoed; unknown fields are ignored
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0","ext":{"app":true},"foo":{"bar":[1,2]},"id":"x"}]
--- error_code: 200
--- response_body_unlike: "ext"
--- response_body_like: "successful":true
