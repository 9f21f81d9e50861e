# Queues between connects, bayeux_max_queue, session expiry.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

run_tests();

__DATA__

=== TEST 1: messages published between connects are delivered in order
--- config
    location /cometd { bayeux; bayeux_timeout 2s; }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q'); $c->connect;
my $pub = client(); $pub->handshake;
$pub->publish('/q', $_) for 1 .. 200;
my $r = $c->connect(timeout => 5);
cmp_ok($r->{elapsed}, '<', 0.5, 'returned at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 1 .. 200 ],
          'all 200, in order, in one response');



=== TEST 2: a full queue ends its session, and its next connect says so (408::queue_overflow, handshake advice), counted, without the clientId (a credential) above debug
--- config
    location /cometd { bayeux; bayeux_timeout 2s; bayeux_max_queue 5; }
    location = /status { bayeux_status; }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q2'); $c->connect;
my $pub = client(); $pub->handshake;
ok($pub->publish('/q2', $_)->{successful}, "publish $_") for 1 .. 8;
my $r = $c->connect(timeout => 5);
cmp_ok($r->{elapsed}, '<', 0.5, 'answered at once');
is_deeply($r->{deliveries}, [], 'nothing delivered');
ok(!$r->{reply}{successful}, 'the connect failed');
is($r->{reply}{error}, '408::queue_overflow', 'told its queue overflowed');
is($r->{reply}{advice}{reconnect}, 'handshake', 'told to handshake');
my $cid = $c->client_id;
$r = $c->connect(advice => { timeout => 0 });
is($r->{reply}{error}, '402::session_unknown', 'the session ended');
my $ep = $pub->endpoint_status;
is($ep->{queue_overflows}, 1, 'one overflow counted');
is($ep->{messages}{dropped}{queue_overflow}, 8, 'its 8 messages counted as dropped');
is($ep->{errors}{other}, 1, 'the 408 counted');
$c->handshake; $c->subscribe('/q2'); $c->connect;
$pub->publish('/q2', 'again');
$r = $c->connect(timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'again' ],
          'a new session receives again');
my @lines = split /\n/, $server->error_log_text;
# (with Redis, sessions of earlier blocks may still be subscribed)
is(scalar(grep { /\[debug\] .*bayeux: full queue: session $cid/ } @lines), 1,
   'one warning for this session, named at debug level');
is_deeply([ grep { !/\[debug\]/ && index($_, $cid) >= 0 } @lines ], [],
          'no line above debug names the session');
--- error_log eval
[qr/\[warn\] .*bayeux: queue of a session is full \(bayeux_max_queue 5, bayeux_max_queue_size 8388608\), the session ends/]
--- no_error_log
[error]



=== TEST 3: a held connect is answered at once when its queue overflows (bayeux_max_queue_size: a message larger than the bound)
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_queue_size 200;
    }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q3'); $c->connect;
my $h = $c->connect_start;
sleep 0.3;
my $pub = client(); $pub->handshake;
ok($pub->publish('/q3', 'small')->{successful}, 'a small one');
my $r = $c->connect_finish($h, timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'small' ],
          'delivered');
$h = $c->connect_start;
sleep 0.3;
ok($pub->publish('/q3', 'x' x 300)->{successful}, 'a large one');
$r = $c->connect_finish($h, timeout => 5);
cmp_ok($r->{elapsed}, '<', 1, 'the held connect is answered at once');
is_deeply($r->{deliveries}, [], 'nothing delivered');
is($r->{reply}{error}, '408::queue_overflow', 'told its queue overflowed');
is($r->{reply}{advice}{reconnect}, 'handshake', 'told to handshake');
--- error_log eval
[qr/\[warn\] .*bayeux: queue of a session is full \(bayeux_max_queue 10000, bayeux_max_queue_size 200\), the session ends/]
--- no_error_log
[error]



=== TEST 4: the default bounds lose nothing of a burst of 2,000 messages between two connects
--- config
    location /cometd { bayeux; bayeux_timeout 2s; }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q4'); $c->connect;
my $pub = client(); $pub->handshake;
for my $k (0 .. 19) {
    my @msgs = map { { channel => '/q4', clientId => $pub->client_id,
                       data => { n => $_, text => 'x' x 50 } } }
               $k * 100 + 1 .. $k * 100 + 100;
    $pub->post('/', \@msgs);
}
my $r = $c->connect(timeout => 5);
is_deeply([ map { $_->{data}{n} } @{ $r->{deliveries} } ], [ 1 .. 2000 ],
          'all 2,000, in order');
--- no_error_log
queue of a session is full



=== TEST 5: a session without connects expires after interval + max_interval
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_interval 200ms;
        bayeux_max_interval 500ms;
    }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q');
my $r = $c->connect;
ok($r->{reply}{successful}, 'alive');
sleep 0.4;
$r = $c->connect(advice => { timeout => 0 });
ok($r->{reply}{successful}, 'still alive before the deadline');
sleep 1.2;
$r = $c->connect(advice => { timeout => 0 });
is($r->{reply}{error}, '402::session_unknown', 'expired');
is($r->{reply}{advice}{reconnect}, 'handshake', 'told to handshake');



=== TEST 6: a session does not expire while a connect is held
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_interval 500ms;
    }
--- bayeux
my $c = client(); $c->handshake; $c->connect;
my $r = $c->connect(timeout => 5);
cmp_ok($r->{elapsed}, '>=', 1.9, 'held for 2 s, longer than max_interval');
ok($r->{reply}{successful}, 'answered normally');
$r = $c->connect(advice => { timeout => 0 });
ok($r->{reply}{successful}, 'session still there');



=== TEST 7: an expired session's subscriptions are gone
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_max_interval 300ms;
    }
--- bayeux
my $old = client(); $old->handshake; $old->subscribe('/gone'); $old->connect;
sleep 0.8;
my $c = client(); $c->handshake; $c->subscribe('/gone'); $c->connect;
my $p = $c->publish('/gone', 'x');
ok($p->{successful}, 'publish after the expiry works');
is(scalar @{ $c->wait_deliveries(count => 1) }, 1, 'live subscriber gets it');
