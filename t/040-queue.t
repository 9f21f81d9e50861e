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



=== TEST 2: a full queue drops its oldest messages and says so once, without the clientId (a credential) above debug
--- config
    location /cometd { bayeux; bayeux_timeout 2s; bayeux_max_queue 5; }
--- bayeux
my $c = client(); $c->handshake; $c->subscribe('/q'); $c->connect;
my $pub = client(); $pub->handshake;
ok($pub->publish('/q', $_)->{successful}, "publish $_") for 1 .. 8;
my $r = $c->connect(timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 4 .. 8 ],
          'the newest 5 remain');
my $cid = $c->client_id;
my @lines = split /\n/, $server->error_log_text;
# (with Redis, sessions of earlier blocks may still be subscribed)
is(scalar(grep { /\[debug\] .*bayeux: full queue: session $cid/ } @lines), 1,
   'one warning for this session, named at debug level');
is_deeply([ grep { !/\[debug\]/ && index($_, $cid) >= 0 } @lines ], [],
          'no line above debug names the session');
--- error_log eval
[qr/\[warn\] .*bayeux: queue of a session is full \(bayeux_max_queue 5\), dropping oldest messages/]
--- no_error_log
[error]



=== TEST 3: a session without connects expires after interval + max_interval
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



=== TEST 4: a session does not expire while a connect is held
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



=== TEST 5: an expired session's subscriptions are gone
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
