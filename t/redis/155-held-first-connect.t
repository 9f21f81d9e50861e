# A long-polling session is held from its first /meta/connect, which is
# answered at once (t/redis/150-held-polling.t holds it when a connect
# parks): its subscriptions, made before that connect (as the CometD and
# Faye clients make them, right after the handshake) or after it, are in
# the held sets "H:" once it is answered, and a publish to them costs
# Redis no RPUSH.  Whether the client asks not to wait (advice timeout 0,
# CometD's first connect) or not (Faye's), on the nginx that answered the
# first connect or on another one, with the second connect sent as soon
# as the first is answered (the hold's notification and the reply race),
# each message arrives once, in order; a client that never connects
# again still has its session end.  So for a session whose connects
# acknowledge (the ack extension): what its first connect gives is its
# batch until a connect acknowledges it, kept as a range of the logs
# ("ha"), as the batches its worker gives are, not copied into its queue.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT texts ack_connect);
use Bayeux::Client;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $redis = start_redis();

# two nginx on the same Redis and prefix: one Bayeux server
my ($A, $B) = map { $redis->bayeux_server(<<'CONF') } 1 .. 2;
        bayeux_timeout 2s;
CONF

# the texts client $c's connects get until the last is $last (or 5 s)
sub until_text {
    my ($c, $last) = @_;
    my @t;
    my $end = time + 5;
    while (time < $end) {
        my $r = $c->connect(timeout => 4);
        unless ($r->{reply} && $r->{reply}{successful}) {
            fail('a connect is answered, successful');
            diag explain $r->{messages};
            last;
        }
        push @t, @{ texts($r) };
        last if @t && $t[-1] eq $last;
    }
    return \@t;
}

# its hash says a worker holds it between connects, as long-polling
sub held_polling {
    my ($id, $name, $prefix) = @_;
    ok(until_true(sub {
           ($redis->session_field($id, 'hl', $prefix) // '') eq '1'
       }, 3),
       $name);
    ok(($redis->session_field($id, 'h', $prefix) // '') ne '',
       '... h is set');
}

new_publisher($A);

#
# a first connect that asks not to wait (as CometD's does), or not (as
# Faye's), then a subscription: held from the start
#

for my $case ([ 'advice timeout 0', { advice => { timeout => 0 } } ],
              [ 'no advice', {} ])
{
    my ($what, $extra) = @$case;
    my $ch = $what eq 'no advice' ? '/fc/b' : '/fc/a';

    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake->{successful}, "$what: handshake");
    my $t0 = time;
    my $r = $c->connect(%$extra);
    ok($r->{reply} && $r->{reply}{successful},
       "$what: the first connect is answered");
    cmp_ok(time - $t0, '<', 1, '... at once');
    held_polling($c->client_id, "$what: its session is held");

    my $rpush = $redis->rpush_calls;
    ok($c->subscribe($ch)->{successful}, "$what: subscribed");
    ok($redis->is_held($c->client_id, $ch), "... held: in H:$ch");
    ok(!$redis->is_subscribed($c->client_id, $ch), '... not in c:');

    publish($ch, "$what $_") for 1 .. 3;
    is($redis->rpush_calls - $rpush, 0, "$what: three messages, no RPUSH");

    $t0 = time;
    is_deeply(texts($c->connect), [ map { "$what $_" } 1 .. 3 ],
              "$what: the second connect gets them, in order");
    cmp_ok(time - $t0, '<', 1, '... at once');

    my $h = $c->connect_start;
    publish($ch, "$what 4");
    is_deeply(texts($c->connect_finish($h, timeout => 4)), [ "$what 4" ],
              "$what: the third connect, parked, gets the fourth");
    is($redis->rpush_calls - $rpush, 0, "$what: still no RPUSH");
}

#
# the next connect on another nginx takes the session over from where
# the first one's hold began: nothing lost, nothing twice
#

{
    my $c = Bayeux::Client->new(port => $A->port);
    ok($c->handshake->{successful}, 'handshake on A');
    ok($c->connect(advice => { timeout => 0 })->{reply}{successful},
       'first connect on A');
    held_polling($c->client_id, 'held by A');
    ok($c->subscribe('/fc/o')->{successful}, 'subscribed on A');
    publish('/fc/o', "o$_") for 1 .. 2;

    my $o = elsewhere($c, $B);
    is_deeply(until_text($o, 'o2'), [ qw(o1 o2) ],
              'the next connect, on B, gets what was published since');
    publish('/fc/o', 'o3');
    is_deeply(until_text($o, 'o3'), [ 'o3' ], 'and B gives the next one');
    publish('/fc/o', 'o4');
    is_deeply(until_text($c, 'o4'), [ 'o4' ],
              'back on A: only what came after');
}

#
# the second connect sent as soon as the first is answered, sessions one
# after another while messages are published: each session gets every
# message published after its first connect, once, in order
#

{
    my $n = 20;
    my @c;
    my $rpush = $redis->rpush_calls;
    for my $i (1 .. $n) {
        my $c = Bayeux::Client->new(port => $A->port);
        $c->handshake;
        $c->subscribe('/fc/r');
        $c->connect(advice => { timeout => 0 });
        publish('/fc/r', "r$i");
        is_deeply(texts($c->connect(timeout => 4)), [ "r$i" ],
                  "session $i: its second connect gets r$i");
        push @c, $c;
    }
    publish('/fc/r', 'end');
    for my $i (1 .. $n) {
        is_deeply(until_text($c[$i - 1], 'end'),
                  [ (map { "r$_" } $i + 1 .. $n), 'end' ],
                  "session $i: then every later one, once, in order");
    }
    is($redis->rpush_calls - $rpush, 0,
       'no RPUSH: every session was held from its first connect');
}

#
# with the ack extension (CometD's first connect acknowledges batch 0): a
# first connect with nothing to give holds the session as well; what is
# published next is given as batch 1, kept in Redis until acknowledged,
# on either nginx
#

sub ack_session {
    my ($server) = @_;
    my $c = Bayeux::Client->new(port => $server->port);
    ok($c->handshake(ext => { ack => JSON::PP::true })->{successful},
       'handshake, with the ack extension');
    return $c;
}

for my $case ([ 'ack, advice timeout 0', { advice => { timeout => 0 } } ],
              [ 'ack, no advice', {} ])
{
    my ($what, $extra) = @$case;
    my $ch = $what eq 'ack, no advice' ? '/fk/b' : '/fk/a';

    my $c = ack_session($A);
    my $t0 = time;
    my ($got, $batch) = ack_connect($c, 0, %$extra);
    is_deeply($got, [], "$what: the first connect gets nothing");
    cmp_ok(time - $t0, '<', 1, '... at once');
    is($batch, undef, '... naming no batch (none was given yet)');
    held_polling($c->client_id, "$what: its session is held");

    my $rpush = $redis->rpush_calls;
    ok($c->subscribe($ch)->{successful}, "$what: subscribed");
    ok($redis->is_held($c->client_id, $ch), "... held: in H:$ch");
    publish($ch, "$what $_") for 1 .. 3;
    is($redis->rpush_calls - $rpush, 0, "$what: three messages, no RPUSH");

    ($got, $batch) = ack_connect($c, 0);
    is_deeply($got, [ map { "$what $_" } 1 .. 3 ],
              "$what: the second connect gets them, in order");
    is($batch, 1, '... as batch 1');
    like($redis->session_field($c->client_id, 'ak') // '', qr/^1:3:\d+,$/,
         '... which Redis keeps (ak)');

    my $h = $c->connect_start(ext => { ack => 1 });
    publish($ch, "$what 4");
    my $r = $c->connect_finish($h, timeout => 4);
    is_deeply(texts($r), [ "$what 4" ],
              "$what: batch 1 acknowledged, the parked connect gets the "
              . 'fourth');
    is($r->{reply}{ext}{ack}, 2, '... as batch 2');
    is($redis->rpush_calls - $rpush, 0, "$what: still no RPUSH");
}

# something to give: given as batch 1, held all the same, the batch kept
# as a range of the logs until a connect acknowledges it; one that does
# not is given it again, one that does is not, and the queue, where the
# batch was copied when it was given again, is emptied when the worker
# gives the next batch
{
    my $c = ack_session($A);
    my $id = $c->client_id;
    ok($c->subscribe('/fk/g')->{successful}, 'subscribed before connecting');
    publish('/fk/g', 'g1');
    my ($got, $batch) = ack_connect($c, 0, advice => { timeout => 0 });
    is_deeply($got, [ 'g1' ], 'the first connect gets g1');
    is($batch, 1, '... as batch 1');
    held_polling($id, '... held between connects');
    like($redis->session_field($id, 'ak') // '', qr/^1:1:\d+,$/,
         '... batch 1 kept (ak)');
    ok(($redis->session_field($id, 'ha') // '') ne '',
       '... as a range of the logs (ha)');
    is($redis->cmd('LLEN', "bayeux:q:$id"), 0, '... not in its queue');
    my $rp = $redis->rpush_calls;
    publish('/fk/g', 'g2');
    is($redis->rpush_calls - $rp, 0, 'a publish: no RPUSH');
    my $r;
    ($got, $batch, $r) = ack_connect($c, 0, advice => { timeout => 0 });
    is_deeply($got, [ 'g1', 'g2' ],
              'batch 1 not acknowledged: given again, first, then g2');
    is($batch, 2, '... as batch 2');
    held_polling($id, '... held between connects');
    my $h = $c->connect_start(ext => { ack => 2 });
    sleep 0.2;
    $rp = $redis->rpush_calls;
    publish('/fk/g', 'g3');
    $r = $c->connect_finish($h, timeout => 4);
    is_deeply(texts($r), [ 'g3' ],
              'batch 2 acknowledged: the connect parks, gets g3 only');
    is($r->{reply}{ext}{ack}, 3, '... as batch 3');
    is($redis->cmd('EXISTS', "bayeux:q:$id"), 0,
       '... the batches kept in the queue are gone from it');
    is($redis->session_field($id, 'qb'), '0', '... and from its size (qb)');
    is($redis->rpush_calls - $rp, 0, '... no RPUSH');
    ($got, $batch) = ack_connect($c, 2, advice => { timeout => 0 });
    is_deeply($got, [ 'g3' ], 'batch 3 lost: g3 again, not g1 or g2');
}

# held by A, the next connect on B; a batch not acknowledged is given
# again there
{
    my $c = ack_session($A);
    ack_connect($c, 0, advice => { timeout => 0 });
    held_polling($c->client_id, 'ack: held by A');
    ok($c->subscribe('/fk/o')->{successful}, 'subscribed on A');
    publish('/fk/o', "o$_") for 1 .. 2;

    my $o = elsewhere($c, $B);
    my ($got, $batch) = ack_connect($o, 0);
    is_deeply($got, [ qw(o1 o2) ],
              'the next connect, on B, gets what was published since');
    is($batch, 1, '... as batch 1');
    ($got, $batch) = ack_connect($c, 0, advice => { timeout => 0 });
    is_deeply($got, [ qw(o1 o2) ],
              'batch 1 not acknowledged, back on A: given again');
    is($batch, 1, '... as batch 1');
    publish('/fk/o', 'o3');
    ($got, $batch) = ack_connect($o, 1, advice => { timeout => 0 });
    is_deeply($got, [ 'o3' ], 'acknowledged, on B: only o3');
    is($batch, 2, '... as batch 2');
}

# the second connect sent as soon as the first is answered
{
    my $n = 10;
    my @c;
    my $rpush = $redis->rpush_calls;
    for my $i (1 .. $n) {
        my $c = ack_session($A);
        $c->subscribe('/fk/r');
        $c->connect(ext => { ack => 0 }, advice => { timeout => 0 });
        publish('/fk/r', "r$i");
        my ($got, $batch) = ack_connect($c, 0);
        is_deeply($got, [ "r$i" ],
                  "ack session $i: its second connect gets r$i");
        push @c, [ $c, $batch ];
    }
    publish('/fk/r', 'end');
    for my $i (1 .. $n) {
        my ($c, $batch) = @{ $c[$i - 1] };
        my @t;
        my $end = time + 5;
        while (time < $end) {
            my $got;
            ($got, $batch) = ack_connect($c, $batch);
            push @t, @$got;
            last if @t && $t[-1] eq 'end';
        }
        is_deeply(\@t, [ (map { "r$_" } $i + 1 .. $n), 'end' ],
                  "ack session $i: then every later one, once, in order");
    }
    is($redis->rpush_calls - $rpush, 0,
       'no RPUSH: every ack session was held from its first connect');
}

unlike($_->error_log_text, qr/\[(alert|crit|emerg)\]/, 'no alert')
    for $A, $B;
$_->stop for $A, $B;

#
# a client that never connects again after its first connect: its session
# ends as any other's, the message its worker kept for it with it
#

{
    my $exp = $redis->bayeux_server(<<'CONF', 'exp:');
        bayeux_timeout 2s;
        bayeux_interval 0;
        bayeux_max_interval 1s;
CONF
    my $x = Bayeux::Client->new(port => $exp->port);
    ok($x->handshake->{successful}, 'handshake');
    ok($x->subscribe('/fc/x')->{successful}, 'subscribed');
    ok($x->connect->{reply}{successful}, 'first connect');
    held_polling($x->client_id, 'held', 'exp:');
    new_publisher($exp);
    my $t0 = time;
    publish('/fc/x', 'x1');
    my $xid = $x->client_id;
    ok(until_true(sub { !$redis->cmd('EXISTS', "exp:s:$xid") }, 5),
       'the client connects no more: its session ends');
    cmp_ok(time - $t0, '<', 1 + 1.5,
           '... within bayeux_interval + bayeux_max_interval (1 s), '
           . 'and a little');
    my $r = $x->connect(advice => { timeout => 0 });
    is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
       'its next connect: 402::session_unknown');
    $exp->stop;
    unlike($exp->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert (bayeux_max_interval 1s)');
}

my @keys = $redis->scan('*');
my @no_ttl = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key left has a TTL');

done_testing();
