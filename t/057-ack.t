# CometD's ack extension (AcknowledgedMessagesExtension), as its client's
# AckExtension speaks it: a handshake with ext.ack true is answered with
# ext.ack true; each /meta/connect then names the last batch it received
# (ext.ack: N), and every successful connect reply names the batch it
# gives; what is not acknowledged is given again, first, in order, until
# it is.  Its deliveries travel in connect replies only, over websocket
# too.  bayeux_ack off: none of it.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;
use Time::HiRes qw(time sleep);

block_defaults(config => <<'CONF');
    location /cometd { bayeux; bayeux_timeout 1s; }
CONF

run_tests();

sub ws {
    return Bayeux::WebSocket->new(
        port => Test::Nginx::Bayeux::Conversation::server()->port, @_);
}

# a connect that acknowledges $ack: the data it delivered, its reply
sub ack_connect {
    my ($c, $ack, %extra) = @_;
    my $r = $c->connect(ext => { ack => $ack }, %extra);
    return ([ map { $_->{data} } @{ $r->{deliveries} } ], $r->{reply}, $r);
}

__DATA__

=== TEST 1: the handshake: ext.ack true is answered with ext.ack true; no ext.ack, ack false: nothing
--- bayeux
my $c = client();
my $r = $c->handshake(ext => { ack => JSON::PP::true });
ok($r->{successful}, 'handshake');
is_deeply($r->{ext}, { ack => JSON::PP::true }, 'ext.ack true');

$r = client()->handshake;
ok(!exists $r->{ext}, 'no ext.ack asked: none given');

$r = client()->handshake(ext => { ack => JSON::PP::false });
ok(!exists $r->{ext}, 'ext.ack false: none given');

$r = client()->handshake(ext => { ack => { enabled => JSON::PP::true } });
is_deeply($r->{ext}, { ack => JSON::PP::true }, 'the object form too');

$r = client()->handshake(ext => { ack => 'yes' });
ok(!exists $r->{ext}, 'not a boolean: ignored');

# a refused handshake says nothing of acks
$r = client()->handshake(supportedConnectionTypes => ['carrier-pigeon'],
                         ext => { ack => JSON::PP::true });
ok(!$r->{successful}, 'refused handshake');
ok(!exists $r->{ext}, 'without ext.ack');
--- no_error_log
[error]



=== TEST 2: long-polling: batches numbered from 1, a lost reply given again whole, in order, an acknowledged batch forgotten
--- bayeux
my $c = client();
$c->handshake(ext => { ack => JSON::PP::true });
$c->subscribe('/a');
my ($got, $reply) = main::ack_connect($c, 0);
ok($reply->{successful}, 'first connect');
ok(!exists $reply->{ext}, 'no batch given yet: no ext.ack');

my $p = client();
$p->handshake;
$p->publish('/a', $_) for 1 .. 3;

($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1, 2, 3], 'delivered');
is($reply->{ext}{ack}, 1, 'as batch 1');

# the reply was lost: the client acknowledges what it had, 0, again
$p->publish('/a', 4);
($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1, 2, 3, 4], 'batch 1 again, then the new message');
is($reply->{ext}{ack}, 2, 'as batch 2');

# lost again, nothing new: the same, under the same number
($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1, 2, 3, 4], 'all of it again, at once');
is($reply->{ext}{ack}, 2, 'batch 2');

# batch 1 arrived, batch 2 did not
($got, $reply) = main::ack_connect($c, 1);
is_deeply($got, [4], 'only batch 2 again');
is($reply->{ext}{ack}, 2, 'batch 2');

# all arrived: the connect is held, and answered with the next one
my $h = $c->connect_start(ext => { ack => 2 });
sleep 0.3;
$p->publish('/a', 5);
my $r = $c->connect_finish($h);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [5],
          'held, then given the new message');
cmp_ok($r->{elapsed}, '<', 0.9, 'before the hold time');
is($r->{reply}{ext}{ack}, 3, 'as batch 3');

# acknowledged: a held connect that ends empty still names the batch
($got, $reply, $r) = main::ack_connect($c, 3);
is_deeply($got, [], 'nothing again');
cmp_ok($r->{elapsed}, '>=', 0.9, 'held for the hold time');
is($reply->{ext}{ack}, 3, 'batch 3 named');
--- no_error_log
[error]



=== TEST 3: a connect without ext.ack takes what it is given, unacknowledged messages too; a new session starts at batch 1
--- bayeux
my $c = client();
$c->handshake(ext => { ack => JSON::PP::true });
$c->subscribe('/a');
main::ack_connect($c, 0);
my $p = client();
$p->handshake;
$p->publish('/a', 'x');
my ($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, ['x'], 'batch 1');
my $r = $c->connect(advice => { timeout => 0 });
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['x'],
          'a connect without ext.ack: given again');
ok(!exists $r->{reply}{ext}, 'without a batch number');
($got, $reply) = main::ack_connect($c, 0, advice => { timeout => 0 });
is_deeply($got, [], 'taken for good');

# ext.ack of another type is no acknowledgement
$p->publish('/a', 'y');
$r = $c->connect(ext => { ack => 'x' }, advice => { timeout => 0 });
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['y'], 'delivered');
ok(!exists $r->{reply}{ext}, 'not a number: no batch');
$r = $c->connect(ext => { ack => 0 }, advice => { timeout => 0 });
is_deeply($r->{deliveries}, [], 'taken for good');

# a new session: its own batches, from 1
my $d = client();
$d->handshake(ext => { ack => JSON::PP::true });
$d->subscribe('/a');
main::ack_connect($d, 0);
$p->publish('/a', 'z');
($got, $reply) = main::ack_connect($d, 0);
is_deeply($got, ['z'], 'the new session');
is($reply->{ext}{ack}, 1, 'batch 1');

# a number beyond any batch acknowledges everything; below 0, nothing
$p->publish('/a', 'w');
($got, $reply) = main::ack_connect($d, -5, advice => { timeout => 0 });
is_deeply($got, ['z', 'w'], 'below 0: nothing acknowledged');
is($reply->{ext}{ack}, 2, 'batch 2');
($got, $reply) = main::ack_connect($d, 999999999999999, advice => { timeout => 0 });
is_deeply($got, [], 'a huge number: all acknowledged');
--- no_error_log
[error]



=== TEST 4: websocket: with acks, the held connect is answered with the deliveries instead of a push; without, pushed
--- bayeux
my $ws = main::ws();
ok($ws->handshake, 'upgraded');
$ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                   supportedConnectionTypes => ['websocket'], id => '1',
                   ext => { ack => JSON::PP::true } } ]);
my $r = $ws->recv_json;
is_deeply($r->[0]{ext}, { ack => JSON::PP::true }, 'ext.ack true');
my $cid = $r->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid,
                   subscription => '/w', id => '2' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '3',
                   ext => { ack => 0 } } ]);
$ws->recv_json;

my $t0 = time;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '4',
                   ext => { ack => 0 } } ]);
sleep 0.3;
my $p = client();
$p->handshake;
$p->publish('/w', 'one');
$r = $ws->recv_json(timeout => 3);
is_deeply([ map { $_->{data} // $_->{channel} } @$r ],
          ['one', '/meta/connect'],
          'one frame: the delivery and the connect reply');
is($r->[1]{id}, '4', 'of the held connect');
is($r->[1]{ext}{ack}, 1, 'batch 1');
cmp_ok(time - $t0, '<', 0.9, 'answered before its hold time');

# the reply was lost (the client says 0): given again at once
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '5',
                   ext => { ack => 0 } } ]);
$r = $ws->recv_json(timeout => 3);
is_deeply([ map { $_->{data} // $_->{channel} } @$r ],
          ['one', '/meta/connect'], 'given again');
is($r->[1]{ext}{ack}, 1, 'batch 1');

# the same session, connects without ext.ack: pushed as ever
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '6' } ]);
$r = $ws->recv_json(timeout => 3);
is_deeply([ map { $_->{data} // $_->{channel} } @$r ],
          ['one', '/meta/connect'], 'taken by a connect without ack');
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '7' } ]);
sleep 0.3;
$p->publish('/w', 'two');
$r = $ws->recv_json(timeout => 3);
is_deeply([ map { $_->{data} // $_->{channel} } @$r ], ['two'],
          'pushed, the connect still held');
$r = $ws->recv_json(timeout => 3);
is($r->[0]{id}, '7', 'then the connect reply');
--- no_error_log
[error]



=== TEST 5: unacknowledged messages count against the session's bounds
--- config
    location /cometd { bayeux; bayeux_timeout 1s; bayeux_max_queue 3; }
--- bayeux
my $c = client();
$c->handshake(ext => { ack => JSON::PP::true });
$c->subscribe('/a');
main::ack_connect($c, 0);
my $p = client();
$p->handshake;
$p->publish('/a', $_) for 1 .. 2;
my ($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1, 2], 'batch 1, kept');
$p->publish('/a', 3);
($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1, 2, 3], 'three kept: the bound');
$p->publish('/a', 4);
($got, $reply) = main::ack_connect($c, 0);
is($reply->{error}, '408::queue_overflow', 'a fourth is over it');

# acknowledged in time, the same messages fit
my $d = client();
$d->handshake(ext => { ack => JSON::PP::true });
$d->subscribe('/a');
main::ack_connect($d, 0);
$p->publish('/a', $_) for 1 .. 3;
($got, $reply) = main::ack_connect($d, 0);
is_deeply($got, [1, 2, 3], 'batch 1');
my $h = $d->connect_start(ext => { ack => $reply->{ext}{ack} });
sleep 0.3;
$p->publish('/a', 4);
my $r = $d->connect_finish($h);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [4],
          'acknowledged: room for more');
--- error_log
bayeux: queue of a session is full
--- no_error_log
[error]



=== TEST 6: bayeux_ack off: no ext.ack, and a connect's ext.ack changes nothing
--- config
    location /cometd { bayeux; bayeux_timeout 1s; bayeux_ack off; }
--- bayeux
my $c = client();
my $r = $c->handshake(ext => { ack => JSON::PP::true });
ok($r->{successful} && !exists $r->{ext}, 'no ext.ack');
$c->subscribe('/a');
main::ack_connect($c, 0);
my $p = client();
$p->handshake;
$p->publish('/a', 1);
my ($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1], 'delivered');
ok(!exists $reply->{ext}, 'no batch');
($got, $reply) = main::ack_connect($c, 0, advice => { timeout => 0 });
is_deeply($got, [], 'not given again');
--- no_error_log
[error]



=== TEST 7: with lazy channels: a connect finds what waits unacknowledged at once, lazy messages with it; otherwise lazy ones wait
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_lazy_channel /lazy;
        bayeux_max_lazy_timeout 3s;
    }
--- bayeux
my $c = client();
$c->handshake(ext => { ack => JSON::PP::true });
$c->subscribe('/a', '/lazy');
main::ack_connect($c, 0);
my $p = client();
$p->handshake;
$p->publish('/a', 1);
my ($got, $reply) = main::ack_connect($c, 0);
is_deeply($got, [1], 'batch 1');
$p->publish('/lazy', 'L');
my $r;
($got, $reply, $r) = main::ack_connect($c, 0);
is_deeply($got, [1, 'L'], 'batch 1 again, the lazy message with it');
cmp_ok($r->{elapsed}, '<', 0.5, 'at once');
is($reply->{ext}{ack}, 2, 'batch 2');
$p->publish('/lazy', 'M');
($got, $reply, $r) = main::ack_connect($c, 2);
is_deeply($got, ['M'], 'all acknowledged: the lazy message waited');
cmp_ok($r->{elapsed}, '>=', 0.9, 'until the hold time');
is($reply->{ext}{ack}, 3, 'batch 3');
--- no_error_log
[error]
