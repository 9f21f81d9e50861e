# A session whose client went away while its worker held it (a
# long-polling client that did not come back within the refresh period, a
# websocket that closed) stays held, by no worker: it stays in the held
# sets "H:", and a publish to it costs Redis no work per session (no
# RPUSH, no copy counted), as for a session between its handshake and its
# first connect.  Its next connect, on any nginx, gives what it missed
# from the logs, once each and in order (with the ack extension, a batch
# not acknowledged yet first).  One that missed more than the
# log of its channel keeps (bayeux_max_queue) ends as a full queue ends,
# every message it missed counted as dropped, the trimmed ones too.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Bayeux::Redis qw(:DEFAULT held_session texts ack_connect);
use Bayeux::Client;
use Bayeux::WebSocket;
use JSON::PP ();

my $redis = start_redis();

my $conf = <<'CONF';
        bayeux_interval 0;
        bayeux_max_interval 3s;
        bayeux_timeout 2s;
        bayeux_max_queue 3;
CONF

my $A = $redis->bayeux_server($conf, 'hn:', status => 1);
my $B = $redis->bayeux_server($conf, 'hn:', status => 1);

sub field { $redis->session_field($_[0], $_[1], 'hn:') }
sub by_none { $redis->held_by_none($_[0], 'hn:') }
sub queued { Bayeux::Client->new(port => $_[0]->port)
                           ->endpoint_status->{redis}{messages_queued} }

# a long-polling session on A subscribed to $ch, its first connect
# answered, whose client then stays away past the refresh period: held by
# A between its connects, then by none ($who says what it is for); a new
# publisher follows, the last one having expired meanwhile
sub gone_long_polling {
    my ($ch, $who) = @_;
    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake->{successful}, "handshake on A ($who)");
    ok($c->subscribe($ch)->{successful}, "subscribed to $ch");
    ok($c->connect->{reply}{successful}, 'its first connect, answered');
    my $id = $c->client_id;
    ok(until_true(sub { field($id, 'w') ne '' }),
       'held by A between connects');
    ok(until_true(sub { by_none($id) }, 5),
       'its client away past the refresh period: held by none');
    new_publisher($B);
    return $c;
}

#
# a long-polling client that does not come back within the refresh period
#

my $c = gone_long_polling('/hn/a', 'comes back');
my $id = $c->client_id;
ok($redis->is_held($id, '/hn/a', 'hn:'), '... still in H:/hn/a');
ok(!$redis->is_subscribed($id, '/hn/a', 'hn:'), '... not in c:/hn/a');

my $rpush = $redis->rpush_calls;
publish('/hn/a', 'a1');
publish('/hn/a', 'a2');
is($redis->rpush_calls - $rpush, 0, 'the publishes made no RPUSH');
is(queued($A) + queued($B), 0, 'no copy counted');
my $r = elsewhere($c, $B)->connect;
ok($r->{reply} && $r->{reply}{successful}, 'its client comes back, on B');
is_deeply(texts($r), [ 'a1', 'a2' ], '... and gets a1 and a2, in order');
is($redis->rpush_calls - $rpush, 0, '... without a copy');
ok($redis->is_held($id, '/hn/a', 'hn:') && field($id, 'w') ne '',
   'held by B now');
publish('/hn/a', 'a3');
$r = elsewhere($c, $B)->connect;
is_deeply(texts($r), [ 'a3' ], 'its next connect gets only a3');

#
# a websocket that closes
#

my ($ws, $wid) = held_session($A->port, '/hn/w');
ok(until_true(sub { $redis->is_held($wid, '/hn/w', 'hn:') }),
   'a websocket session held by A');
$ws->close;
ok(until_true(sub { by_none($wid) }, 5),
   'its websocket closed: held by none');
ok($redis->is_held($wid, '/hn/w', 'hn:')
   && !$redis->is_subscribed($wid, '/hn/w', 'hn:'), '... still in H:/hn/w');
new_publisher($B);
$rpush = $redis->rpush_calls;
publish('/hn/w', 'w1');
is($redis->rpush_calls - $rpush, 0, 'a publish made no RPUSH');
my $back = Bayeux::WebSocket->new(port => $B->port);
$back->handshake or die $back->error;
Test::Bayeux::Redis::ws_send($back, { channel => '/meta/connect',
                                      clientId => $wid, id => 'c',
                                      connectionType => 'websocket',
                                      advice => { timeout => 0 } });
my $got = $back->recv_json(timeout => 5) || [];
is_deeply([ map { $_->{data}{text} } grep { $_->{channel} eq '/hn/w' } @$got ],
          [ 'w1' ], 'a websocket of the session on B gets w1');
ok((grep { $_->{channel} eq '/meta/connect' && $_->{successful} } @$got),
   '... its connect answered');
$back->close;

#
# with the ack extension: the batch given last, not acknowledged when the
# client went away, stays a range of the logs; a connect that comes back
# without acknowledging it (its reply was lost) is given it again, first,
# one that acknowledges it only what came after
#

my %k;
for my $who (qw(lost acked)) {
    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake(ext => { ack => JSON::PP::true })->{successful},
       "handshake with acks ($who)");
    ok($c->subscribe("/hn/k/$who")->{successful}, "subscribed ($who)");
    my (undef, $b0) = ack_connect($c, 0);
    $b0 //= 0;
    ok(until_true(sub { field($c->client_id, 'w') ne '' }),
       "held by A ($who)");
    $k{$who} = { c => $c, b0 => $b0 };
}
new_publisher($B);
publish("/hn/k/$_", "$_ 1") for qw(lost acked);
for my $who (qw(lost acked)) {
    my ($given, $b1, $r) = ack_connect($k{$who}{c}, $k{$who}{b0});
    is_deeply($given, [ "$who 1" ], "given '$who 1' by A ($who)")
        or diag explain $r;
    $k{$who}{b1} = $b1;
}
for my $who (qw(lost acked)) {
    my $id = $k{$who}{c}->client_id;
    ok(until_true(sub { by_none($id) }, 5), "then held by none ($who)");
    isnt(field($id, 'ha') // '', '', '... its last batch a range of the logs');
}
new_publisher($B);
publish("/hn/k/$_", "$_ 2") for qw(lost acked);
$rpush = $redis->rpush_calls;
($got) = ack_connect(elsewhere($k{acked}{c}, $B), $k{acked}{b1});
is_deeply($got, [ 'acked 2' ],
          'back on B, acknowledging the last batch: only what came after');
is($redis->rpush_calls - $rpush, 0, '... without a copy');
($got, my $b) = ack_connect(elsewhere($k{lost}{c}, $B), $k{lost}{b0});
is_deeply($got, [ 'lost 1', 'lost 2' ],
          'back on B, its last reply lost: the batch again, first, then '
          . 'what came after');
is($b, $k{lost}{b1} + 1, '... as the next batch');

#
# more than bayeux_max_queue missed while held by none: the log of the
# channel no longer has them all; the next connect ends the session, and
# every message it missed is counted as dropped
#

my $f = gone_long_polling('/hn/f', 'misses too much');
my $ep0 = $f->endpoint_status;
publish('/hn/f', "f$_") for 1 .. 7;
is($redis->cmd('ZCARD', 'hn:l:/hn/f'), 3, 'the log keeps three');
$r = $f->connect(advice => { timeout => 0 });
is($r->{reply} && $r->{reply}{error}, '408::queue_overflow',
   'its next connect: 408::queue_overflow');
is_deeply(texts($r), [], '... and no message');
my $ep = $f->endpoint_status;
is($ep->{queue_overflows} - $ep0->{queue_overflows}, 1,
   'one overflow counted');
is($ep->{messages}{dropped}{queue_overflow}
   - $ep0->{messages}{dropped}{queue_overflow}, 7,
   'the seven messages it missed counted as dropped, the trimmed ones too');
ok($A->wait_for_log(qr/\[warn\] .*bayeux: a held session missed messages that the log of its channel no longer had \(bayeux_max_queue 3\), the session ends/,
                    timeout => 2),
   'the error log says why');
$r = $f->connect(advice => { timeout => 0 });
is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
   'the session ended');

$_->stop for $A, $B;
for my $s ($A, $B) {
    unlike($s->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
           'no error in the error log');
}

done_testing();
