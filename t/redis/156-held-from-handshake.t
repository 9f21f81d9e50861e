# A session is held from its handshake, by no worker until its first
# /meta/connect: the subscriptions it makes before that connect (as the
# CometD and Faye clients make them, right after the handshake) are in
# the held sets "H:" at once, so a publish to them costs Redis no RPUSH,
# and that first connect, on whichever nginx, gets what was logged for
# them since each subscription, once, in order.  An unsubscribe before
# the first connect keeps what was published while subscribed; more
# than bayeux_max_queue missed ends the session as a full queue does.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT texts ack_connect);
use Bayeux::Client;
use JSON::PP ();
use Time::HiRes qw(time);

my $redis = start_redis();

# two nginx on the same Redis and prefix: one Bayeux server
my ($A, $B) = map { $redis->bayeux_server(<<'CONF') } 1 .. 2;
        bayeux_timeout 2s;
CONF

new_publisher($A);

# a session handshaken on $server that subscribed to @ch and did not
# connect
sub unconnected {
    my ($server, @ch) = @_;
    my $c = Bayeux::Client->new(port => $server->port);
    ok($c->handshake->{successful}, 'handshake');
    ok($c->subscribe($_)->{successful}, "subscribed to $_") for @ch;
    return $c;
}

#
# subscribed on A, first connect on B: nothing queued in between, each
# message once, in order; one published before the subscription, not
#

{
    # the channel has a log before the subscription: its other
    # subscriber has not connected either
    my $other = unconnected($A, '/hh/a');

    # handshaken before that message, subscribed after it
    my $c = unconnected($A);
    publish('/hh/a', 'before');
    my $rpush = $redis->rpush_calls;
    ok($c->subscribe('/hh/a')->{successful}, 'subscribed to /hh/a');
    my $id = $c->client_id;
    ok($redis->is_held($id, '/hh/a'), 'held before any connect: in H:');
    ok(!$redis->is_subscribed($id, '/hh/a'), '... not in c:');
    is($redis->session_field($id, 'w'), '', '... by no worker');

    publish('/hh/a', "a$_") for 1 .. 3;
    is($redis->rpush_calls - $rpush, 0, 'three messages, no RPUSH');

    my $o = elsewhere($c, $B);
    my $t0 = time;
    my $r = $o->connect;
    ok($r->{reply} && $r->{reply}{successful}, 'the first connect, on B');
    cmp_ok(time - $t0, '<', 1, '... answered at once');
    is_deeply(texts($r), [ qw(a1 a2 a3) ],
              '... with what was published since the subscription, in '
              . 'order');
    ok(until_true(sub {
           ($redis->session_field($id, 'hl') // '') eq '1' }, 3),
       'then held by B between connects');

    # (that connect queued what it was given, as a session let go is)
    $rpush = $redis->rpush_calls;

    my $h = $o->connect_start;
    publish('/hh/a', 'a4');
    is_deeply(texts($o->connect_finish($h, timeout => 4)), [ 'a4' ],
              'the next connect, parked on B, gets a4 alone');
    is($redis->rpush_calls - $rpush, 0, 'still no RPUSH');
}

#
# a subscription made after others, a message of a channel the session
# does not have: each channel from its own subscription on
#

{
    my $rpush = $redis->rpush_calls;
    my $c = unconnected($A, '/hh/x');
    publish('/hh/x', 'x1');
    publish('/hh/y', 'y0');
    ok($c->subscribe('/hh/y')->{successful}, 'then subscribed to /hh/y');
    publish('/hh/y', 'y1');
    publish('/hh/x', 'x2');
    publish('/hh/z', 'z1');
    is($redis->rpush_calls - $rpush, 0, 'no RPUSH');
    is_deeply(texts($c->connect(advice => { timeout => 0 })),
              [ qw(x1 y1 x2) ], 'the first connect gets x1 y1 x2, in order');
}

#
# an unsubscribe before the first connect: what was published while
# subscribed is still given, nothing after
#

{
    my $c = unconnected($A, '/hh/u', '/hh/v');
    publish('/hh/u', 'u1');
    publish('/hh/v', 'v1');
    ok($c->unsubscribe('/hh/v')->{successful}, 'unsubscribed from /hh/v');
    ok(!$redis->is_held($c->client_id, '/hh/v')
       && !$redis->is_subscribed($c->client_id, '/hh/v'),
       '... in neither set of /hh/v');
    ok($redis->is_held($c->client_id, '/hh/u'), '... still held on /hh/u');
    publish('/hh/v', 'v2');
    publish('/hh/u', 'u2');
    is_deeply(texts($c->connect(advice => { timeout => 0 })),
              [ qw(u1 v1 u2) ],
              'the first connect gets u1 v1 u2: not v2');
    my $h = $c->connect_start;
    publish('/hh/u', 'u3');
    is_deeply(texts($c->connect_finish($h, timeout => 4)), [ 'u3' ],
              'then u3 alone');
}

#
# a wildcard subscription, and a session subscribed to a channel and to
# a pattern that matches it: each message once
#

{
    my $c = unconnected($A, '/hh/w/*', '/hh/w/a');
    publish('/hh/w/a', 'w1');
    publish('/hh/w/b', 'w2');
    is_deeply(texts($c->connect(advice => { timeout => 0 })),
              [ qw(w1 w2) ], 'the first connect gets w1 and w2, once each');
}

#
# with the ack extension: the first connect acknowledges nothing and gets
# what was published as batch 1, kept as a range of the logs ("ha"), not
# copied, until a connect acknowledges it, and holds the session all the
# same (what is published meanwhile is not queued for it); the next
# connect that acknowledges all it was given parks, held
#

{
    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake(ext => { ack => JSON::PP::true })->{successful},
       'handshake, with the ack extension');
    ok($c->subscribe('/hh/k')->{successful}, 'subscribed');
    ok($redis->is_held($c->client_id, '/hh/k'), '... held: in H:');
    publish('/hh/k', "k$_") for 1 .. 2;
    my $o = elsewhere($c, $B);
    my ($got, $batch) = ack_connect($o, 0, advice => { timeout => 0 });
    is_deeply($got, [ qw(k1 k2) ], 'the first connect, on B, gets k1 k2');
    is($batch, 1, '... as batch 1');
    ok(until_true(sub { $redis->is_held($c->client_id, '/hh/k') }, 3)
       && !$redis->is_subscribed($c->client_id, '/hh/k'),
       '... and holds the session: in H:, not in c:');
    ok(($redis->session_field($c->client_id, 'ha') // '') ne '',
       '... batch 1 kept as a range of the logs (ha)');
    is($redis->cmd('LLEN', 'bayeux:q:' . $c->client_id), 0,
       '... not copied into its queue');
    my $rp = $redis->rpush_calls;
    publish('/hh/k', 'k2b');
    is($redis->rpush_calls - $rp, 0, 'a publish: no RPUSH');
    ($got, $batch) = ack_connect($o, 1, advice => { timeout => 0 });
    is_deeply($got, [ 'k2b' ],
              'the next connect, acknowledging batch 1, gets k2b');
    is($batch, 2, '... as batch 2');
    my $h = $o->connect_start(ext => { ack => 2 });
    ok(until_true(sub { $redis->is_held($c->client_id, '/hh/k') }, 3),
       'the next connect, acknowledging it, parks: held');
    publish('/hh/k', 'k3');
    my $r = $o->connect_finish($h, timeout => 4);
    is_deeply(texts($r), [ 'k3' ], '... and gets k3');
    is($r->{reply}{ext}{ack}, 3, '... as batch 3');
}

#
# a first connect that finds nothing to give holds the session without
# moving it out of the held sets and back: no SADD, with or without the
# ack extension
#

for my $ext ({}, { ack => JSON::PP::true }) {
    my $with = %$ext ? 'with acks' : 'without acks';
    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake(ext => $ext)->{successful}, "handshake $with");
    ok($c->subscribe('/hh/n')->{successful}, 'subscribed');
    my $before = $redis->calls('sadd');
    my $r = $c->connect(advice => { timeout => 0 },
                        %$ext ? (ext => { ack => 0 }) : ());
    ok($r->{reply}{successful}, "the first connect $with, answered");
    is_deeply(texts($r), [], '... with nothing');
    ok($redis->is_held($c->client_id, '/hh/n'), '... held');
    is($redis->calls('sadd') - $before, 0, '... and no SADD ran');
    ok($c->disconnect->{successful}, 'disconnected');
}

#
# a disconnect before any connect: the session's keys go
#

{
    my $c = unconnected($A, '/hh/d');
    my $id = $c->client_id;
    ok($c->disconnect->{successful}, 'disconnected before any connect');
    ok(!$redis->is_held($id, '/hh/d'), '... no longer in H:/hh/d');
    is($redis->cmd('EXISTS', "bayeux:s:$id"), 0, '... its hash is gone');
    publish('/hh/d', 'd1');
}

unlike($_->error_log_text, qr/\[(alert|crit|emerg)\]/, 'no alert')
    for $A, $B;
$_->stop for $A, $B;

#
# more than bayeux_max_queue published before the first connect: the
# session ends as one whose queue is full, and the log says so; as many
# is not too many
#

{
    my $mq = $redis->bayeux_server(<<'CONF', 'mq:', status => 1);
        bayeux_timeout 2s;
        bayeux_max_queue 3;
CONF
    new_publisher($mq);
    my $fit = Bayeux::Client->new(port => $mq->port);
    ok($fit->handshake->{successful}, 'handshake');
    ok($fit->subscribe('/hh/q')->{successful}, 'subscribed');
    publish('/hh/q', "q$_") for 1 .. 3;
    is_deeply(texts($fit->connect(advice => { timeout => 0 })),
              [ qw(q1 q2 q3) ], 'bayeux_max_queue 3: three are given');

    my $c = Bayeux::Client->new(port => $mq->port);
    ok($c->handshake->{successful}, 'handshake');
    ok($c->subscribe('/hh/q')->{successful}, 'subscribed');
    publish('/hh/q', "p$_") for 1 .. 4;
    my $r = $c->connect(advice => { timeout => 0 });
    is($r->{reply}{error}, '408::queue_overflow',
       'four: the first connect gets 408::queue_overflow');
    is($r->{reply}{advice}{reconnect}, 'handshake',
       '... and handshake advice');
    is_deeply($r->{deliveries}, [], '... and no message');
    my $ep = $c->endpoint_status;
    is($ep->{queue_overflows}, 1, 'one overflow counted');
    is($ep->{messages}{dropped}{queue_overflow}, 4,
       'the four messages it missed counted as dropped, the one trimmed '
       . 'from the log too');
    ok(!$redis->is_held($c->client_id, '/hh/q', 'mq:')
       && !$redis->is_subscribed($c->client_id, '/hh/q', 'mq:'),
       '... and left both sets of /hh/q');
    $r = $c->connect(advice => { timeout => 0 });
    is($r->{reply}{error}, '402::session_unknown', 'the session ended');

    my $k = Bayeux::Client->new(port => $mq->port);
    ok($k->handshake(ext => { ack => JSON::PP::true })->{successful},
       'handshake with the ack extension');
    ok($k->subscribe('/hh/q')->{successful}, 'subscribed');
    publish('/hh/q', "r$_") for 1 .. 4;
    $r = $k->connect(advice => { timeout => 0 }, ext => { ack => 0 });
    is($r->{reply}{error}, '408::queue_overflow',
       'with acks too, four: the first connect gets 408::queue_overflow');
    ok(!$redis->is_held($k->client_id, '/hh/q', 'mq:')
       && !$redis->is_subscribed($k->client_id, '/hh/q', 'mq:'),
       '... and leaves both sets of /hh/q');
    $mq->stop;
    like($mq->error_log_text,
         qr/\[warn\] .*bayeux: a held session missed messages that the log of its channel no longer had \(bayeux_max_queue 3\), the session ends/,
         'the log says so');
    unlike($mq->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
           'no error');
}

my @keys = $redis->scan('*');
my @no_ttl = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key left has a TTL');

done_testing();
