# /meta/connect: returns at once the first time, then is held; what
# releases a held connect; clients that go away.

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

=== TEST 1: the first connect returns at once, the next is held for the timeout
--- bayeux
my $c = client();
$c->handshake;
my $r = $c->connect;
is($r->{status}, 200, 'first connect answered');
ok($r->{reply}{successful}, 'successful');
cmp_ok($r->{elapsed}, '<', 0.5, 'first connect returns at once');
is_deeply($r->{reply}{advice},
          { reconnect => 'retry', interval => 0, timeout => 2000,
            maxInterval => 10000 }, 'advice');
is($r->{reply}{clientId}, $c->client_id, 'clientId in the reply');

$r = $c->connect(timeout => 5);
is($r->{status}, 200, 'second connect answered');
ok($r->{reply}{successful}, 'successful');
cmp_ok($r->{elapsed}, '>=', 1.9, 'held for the timeout');
cmp_ok($r->{elapsed}, '<', 2.5, 'not held longer than advertised');
is(scalar @{ $r->{deliveries} }, 0, 'nothing delivered');
--- no_error_log
[error]



=== TEST 2: the client's advice.timeout shortens the hold, never lengthens it
--- bayeux
my $c = client();
$c->handshake;
$c->connect;
my $r = $c->connect(advice => { timeout => 500 }, timeout => 5);
cmp_ok($r->{elapsed}, '>=', 0.45, 'held');
cmp_ok($r->{elapsed}, '<', 1.2, 'for the client timeout');
$r = $c->connect(advice => { timeout => 0 });
cmp_ok($r->{elapsed}, '<', 0.3, 'timeout 0 returns at once');
$r = $c->connect(advice => { timeout => 60000 }, timeout => 5);
cmp_ok($r->{elapsed}, '<', 2.5, 'not longer than bayeux_timeout');



=== TEST 3: a delivery releases a held connect at once
--- bayeux
my $sub = client();
$sub->handshake;
$sub->subscribe('/chat/room');
$sub->connect;
my $h = $sub->connect_start;
sleep 0.3;
my $pub = client();
$pub->handshake;
my $p = $pub->publish('/chat/room', { text => 'hello' }, id => 'm1');
ok($p->{successful}, 'publish acknowledged');
my $r = $sub->connect_finish($h, timeout => 5);
cmp_ok($r->{elapsed}, '<', 1.5, 'released before the timeout');
is_deeply($r->{deliveries},
          [ { channel => '/chat/room', data => { text => 'hello' },
              id => 'm1' } ], 'the message, exactly');
ok($r->{reply}{successful}, 'connect reply');
is($r->{messages}[-1]{channel}, '/meta/connect', 'deliveries come first');



=== TEST 4: a newer connect of the same session answers the older one
--- bayeux
my $c = client();
$c->handshake;
$c->connect;
my $old = $c->connect_start;
sleep 0.3;
my $new = $c->connect_start;
my $r = $c->connect_finish($old, timeout => 5);
is($r->{status}, 200, 'older connect answered');
ok($r->{reply}{successful}, 'successfully');
cmp_ok($r->{elapsed}, '<', 1, 'at once');
$r = $c->connect_finish($new, timeout => 5);
cmp_ok($r->{elapsed}, '>=', 1.9, 'newer one is held');



=== TEST 5: a disconnect answers the held connect with reconnect none
--- bayeux
my $c = client();
$c->handshake;
$c->connect;
my $h = $c->connect_start;
sleep 0.3;
my $d = $c->disconnect(id => 'd');
is_deeply($d, { id => 'd', channel => '/meta/disconnect', successful => JSON::PP::true,
                clientId => $c->client_id }, 'disconnect reply');
my $r = $c->connect_finish($h, timeout => 5);
cmp_ok($r->{elapsed}, '<', 1, 'held connect answered at once');
is($r->{reply}{advice}{reconnect}, 'none', 'advice reconnect none');
$r = $c->connect;
is($r->{reply}{error}, '402::session_unknown', 'session is gone');



=== TEST 6: a client that goes away frees its held connect; messages stay queued
--- bayeux
my $c = client();
$c->handshake;
$c->subscribe('/q');
$c->connect;
my $h = $c->connect_start;
sleep 0.3;
$c->abandon($h);
ok($server->wait_for_log(qr/client prematurely closed connection/, timeout => 5), "the server saw the client go");
my $pub = client();
$pub->handshake;
ok($pub->publish('/q', 'after')->{successful}, 'published');
my $r = $c->connect(timeout => 5);
cmp_ok($r->{elapsed}, '<', 1, 'next connect gets the queued message at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['after'],
          'the message was not lost');
--- error_log
client prematurely closed connection
--- no_error_log
[alert]
[crit]



=== TEST 7: unknown session
--- request
POST /cometd/connect
[{"channel":"/meta/connect","clientId":"0123456789abcdef0123456789abcdef01234567","connectionType":"long-polling","id":"9"}]
--- error_code: 200
--- response_body chomp
[{"id":"9","channel":"/meta/connect","successful":false,"error":"402::session_unknown","clientId":"0123456789abcdef0123456789abcdef01234567","advice":{"reconnect":"handshake","interval":0}}]



=== TEST 8: connect without clientId
--- request
POST /cometd/connect
[{"channel":"/meta/connect","connectionType":"long-polling"}]
--- error_code: 200
--- response_body chomp
[{"channel":"/meta/connect","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake","interval":0}}]



=== TEST 9: a connection type the transport is not
--- bayeux
my $c = client();
$c->handshake;
my $r = $c->connect(connectionType => 'websocket');
is($r->{reply}{error}, '400::unsupported_connection_type', 'refused');



=== TEST 10: two connects in one batch
--- bayeux
my $c = client();
$c->handshake;
my $res = $c->post('/', [
    { channel => '/meta/connect', clientId => $c->client_id, id => 'a' },
    { channel => '/meta/connect', clientId => $c->client_id, id => 'b' },
]);
my %by = map { $_->{id} => $_ } @{ $res->{messages} };
ok($by{a}{successful}, 'the first is applied');
is($by{b}{error}, '400::multiple_connects', 'the second is refused');
is($res->{messages}[0]{id}, 'a', 'replies in order');



=== TEST 11: nginx -s quit answers held connects at once
--- skip_valgrind: without a master process nginx exits at once on QUIT
--- bayeux
my $c = client();
$c->handshake;
$c->connect;
my $h = $c->connect_start;
sleep 0.3;
my $t0 = time;
$server->signal('QUIT');
my $r = $c->connect_finish($h, timeout => 5);
cmp_ok(time - $t0, '<', 1.5, 'the held connect ends at once');
is($r->{status}, 200, 'answered, not dropped');
ok($r->{reply} && $r->{reply}{successful}, 'with a successful connect reply');
is($r->{response} && $r->{response}->header('Connection'), 'close',
   'and the connection closed after it');
--- no_error_log
[alert]
