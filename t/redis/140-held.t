# Held sessions: a websocket's connect, held while its deliveries are
# pushed, has its session held by the worker.  The session moves from the
# channel's subscriber set "c:" to "H:", and a publish costs Redis no work
# per held session: the message goes into the channel's log and, once, to
# every worker, which pushes it to the sessions it holds (no RPUSH at
# all).  Subscribing and unsubscribing keep it held: the worker learns
# the new subscriptions.  Whatever ends the hold lets the session go from
# the last message the worker gave: a client that goes away, a lazy message, the hold time being over, a worker killed by
# SIGKILL (its sessions' next connects get what came after the last
# message it wrote it gave, which it writes at each turn of its event
# loop).

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT ws_send held_session hold);
use Bayeux::Client;
use Bayeux::WebSocket;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

my $server = $redis->bayeux_server(<<'CONF');
        bayeux_timeout 4s;
        bayeux_lazy_channel /lazy/**;
        bayeux_max_lazy_timeout 600ms;
CONF

# the same Redis, another prefix: a publisher does not get its own
my $nobc = $redis->bayeux_server(<<'CONF', 'nobc:');
        bayeux_timeout 4s;
        bayeux_broadcast_to_publisher off;
CONF

my $P = 'bayeux:';

# the texts of the deliveries a websocket receives within $timeout, and
# the replies beside them
sub texts { my ($t) = texts_replies(@_); return $t }

sub texts_replies {
    my ($ws, $want, $timeout) = @_;
    my (@texts, @replies);
    my $end = time + ($timeout // 5);
    while ((!defined $want || @texts < $want) && time < $end) {
        my $r = $ws->recv_json(timeout => $end - time) or last;
        for my $m (@$r) {
            if (exists $m->{successful}) { push @replies, $m }
            else { push @texts, $m->{data}{text} }
        }
    }
    return (\@texts, \@replies);
}

# what a connect (not held) on a new websocket gets for session $id
sub take_up {
    my ($port, $id) = @_;
    my $ws = Bayeux::WebSocket->new(port => $port);
    $ws->handshake or die $ws->error;
    ws_send($ws, { channel => '/meta/connect', clientId => $id,
                   connectionType => 'websocket', id => 't',
                   advice => { timeout => 0 } });
    my ($t, $replies) = texts_replies($ws, undef, 1);
    fail('the connect is answered') unless grep { $_->{successful} } @$replies;
    $ws->close;
    return $t;
}

#
# held: a publish costs no work per session
#

new_publisher($server);
my @held = map { [ held_session($server->port, '/held/a') ] } 1 .. 10;
ok(until_true(sub { !grep { !$redis->is_held($_->[1], '/held/a') } @held }),
   'every websocket session is held: in H:/held/a');
is($redis->cmd('SCARD', "${P}c:/held/a"), 0, 'none is left in c:/held/a');

my $rpush = $redis->rpush_calls;
publish('/held/a', "m$_") for 1 .. 5;

for my $k (0 .. $#held) {
    is_deeply(texts($held[$k][0], 5), [ map { "m$_" } 1 .. 5 ],
              "session $k: the five messages, pushed in order");
}
is($redis->rpush_calls - $rpush, 0, 'Redis queued nothing for them: no RPUSH');
is($redis->cmd('EXISTS', "${P}q:$held[0][1]"), 0, 'no queue exists');
cmp_ok($redis->cmd('ZCARD', "${P}l:/held/a"), '>=', 5,
       "the channel's log has them once");
ok($redis->is_held($held[0][1], '/held/a'), 'still held after the pushes');

# one session goes on with the tests; the others leave
my ($ws, $id) = @{ shift @held };
$_->[0]->reset for @held;
ok(until_true(sub { !grep { !$redis->held_by_none($_->[1]) } @held }),
   'sessions whose client went away are held by none');
ok(!grep({ !$redis->is_held($_->[1], '/held/a') } @held),
   '... still in H:/held/a');

#
# subscribing and unsubscribing while held
#

# the session stays held: its worker learns the subscriptions, and its
# connect is not answered for them
publish('/held/b', 'before');
ws_send($ws, { channel => '/meta/subscribe', clientId => $id,
               subscription => '/held/b', id => 'sb' });
my ($t, $replies) = texts_replies($ws, undef, 1);
is_deeply([ map { $_->{id} } @$replies ], [ 'sb' ],
          'subscribed to /held/b while held: the reply, no connect reply');
ok($replies->[0]{successful}, '... successful');
is_deeply($t, [], 'no message of /held/b from before the subscription');
ok($redis->is_held($id, '/held/a') && $redis->is_held($id, '/held/b'),
   'still held: in H:/held/a and H:/held/b');
ok(!$redis->is_subscribed($id, '/held/b'), '... not in c:/held/b');
# (the sessions that went away are still in H:/held/a: logged for)
$rpush = $redis->rpush_calls;
publish('/held/b', 'b1');
is($redis->rpush_calls - $rpush, 0, 'b1: no RPUSH');
publish('/held/a', 'a1');
is_deeply(texts($ws, 2), [ 'b1', 'a1' ],
          'the new channel and the old one, in order');

ws_send($ws, { channel => '/meta/unsubscribe', clientId => $id,
               subscription => '/held/b', id => 'ub' });
($t, $replies) = texts_replies($ws, undef, 1);
is_deeply([ map { $_->{id} } @$replies ], [ 'ub' ],
          'unsubscribed from /held/b while held: the reply, no connect reply');
ok($replies->[0]{successful}, '... successful');
ok($redis->is_held($id, '/held/a') && !$redis->is_held($id, '/held/b'),
   'still held on /held/a, no longer on /held/b');
publish('/held/b', 'b2');
publish('/held/a', 'a2');
is_deeply(texts($ws, 1), [ 'a2' ], 'nothing of /held/b any more');
is_deeply(texts($ws, undef, 0.5), [], 'and nothing else');

# Redis keeps where a subscription made while held starts ("Z:"), for
# whoever lets the session go, until it is unsubscribed
ws_send($ws, { channel => '/meta/subscribe', clientId => $id,
               subscription => '/held/c', id => 'sc' });
($t, $replies) = texts_replies($ws, undef, 1);
ok((grep { $_->{id} eq 'sc' && $_->{successful} } @$replies),
   'subscribed to /held/c while held');
like($redis->cmd('HGET', "${P}Z:$id", '/held/c') // '', qr/^\d+$/,
     '... from a number Redis keeps');
$rpush = $redis->rpush_calls;
publish('/held/c', 'c1');
is_deeply(texts($ws, 1), [ 'c1' ], 'given /held/c');
is($redis->rpush_calls - $rpush, 0,
   '... pushed by the worker after an unsubscribe too: no RPUSH');
ws_send($ws, { channel => '/meta/unsubscribe', clientId => $id,
               subscription => '/held/c', id => 'uc' });
texts_replies($ws, undef, 0.5);
is($redis->cmd('HEXISTS', "${P}Z:$id", '/held/c'), 0,
   'unsubscribed: the start is gone');

#
# the publisher location counts the held sessions it reaches exactly:
# each once, whatever the subscriptions that match, and not one whose
# session is gone (as if it expired), up to 1,000 held subscriptions
#

{
    my $pubc = Test::Nginx::Bayeux::Server->new(
        workers => 1,
        http_config => $redis->engine_conf(prefix => 'pubc:'),
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 4s;
    }
    location = /publish {
        bayeux_publisher /cometd;
    }
CONF
    )->start;
    my @c = map { [ held_session($pubc->port, '/count/a') ] } 1 .. 2;
    push @c, [ held_session($pubc->port, '/count/a', '/count/*') ];
    ok(until_true(sub {
           !grep { !$redis->is_held($_->[1], '/count/a', 'pubc:') } @c
       }), 'three sessions held on /count/a, one on /count/* too');
    my $api = $pubc->client(path => '');
    my $count = sub {
        my $res = $api->request(method => 'POST', uri => '/publish',
                                body => '{"channel":"/count/a",'
                                        . '"data":{"text":"n"}}');
        return $res->status == 200 && $res->body =~ /"sessions":(\d+)/
               ? $1 : "status " . $res->status;
    };
    is($count->(), 3, 'the publisher location: 3 sessions, each once');
    $redis->cmd('DEL', "pubc:s:$c[0][1]");
    is($count->(), 2, '... 2 once the hash of one is gone');

    # beyond 1,000 held subscriptions the count reads none of them: it is
    # the held subscriptions reached (sessions that no worker holds any
    # more, as of a worker killed, stand for a large audience here)
    $redis->cmd('SADD', 'pubc:H:/count/a', map { sprintf('x%031d', $_) }
                                                1 .. 1000);
    my $held = $redis->cmd('SCARD', 'pubc:H:/count/a')
               + $redis->cmd('SCARD', 'pubc:H:/count/*');
    cmp_ok($held, '>', 1000, "$held held subscriptions");
    is($count->(), $held, '... counted as such, not read');
    $redis->cmd('SREM', 'pubc:H:/count/a', map { sprintf('x%031d', $_) }
                                               1 .. 1000);
    is($count->(), 2, 'back to 2 (exact) below the bound');
    $_->[0]->reset for @c;
    $pubc->stop;
}

#
# a lazy message: the session is let go, the message waits
#

$ws->reset;
($ws, $id) = held_session($server->port, '/lazy/x');
ok(until_true(sub { $redis->is_held($id, '/lazy/x') }),
   'held on a lazy channel');
my $t0 = time;
publish('/lazy/x', 'lazy');
is_deeply(texts($ws, 1, 3), [ 'lazy' ], 'the lazy message arrives');
cmp_ok(time - $t0, '>=', 0.4, 'not at once: after the lazy timeout');
$ws->reset;

#
# the client goes away: the next connect gets what came after, once
#

($ws, $id) = held_session($server->port, '/held/c');
ok(until_true(sub { $redis->is_held($id, '/held/c') }), 'held again');
publish('/held/c', 'c1');
is_deeply(texts($ws, 1), [ 'c1' ], 'pushed');
$ws->reset;
ok(until_true(sub { $redis->held_by_none($id) }),
   'held by none when it left');
publish('/held/c', "c$_") for 2 .. 3;
is_deeply(take_up($server->port, $id), [ 'c2', 'c3' ],
          'a new websocket connect gets what came after, and only that');

#
# the publisher's own message, bayeux_broadcast_to_publisher off
#

my ($nws, $nid) = held_session($nobc->port, '/held/n');
ok(until_true(sub { $redis->is_held($nid, '/held/n', 'nobc:') }),
   'held (nobc)');
my $other = Bayeux::Client->new(port => $nobc->port);
ok($other->handshake->{successful}, 'another publisher');
ws_send($nws, { channel => '/held/n', clientId => $nid,
                data => { text => 'own' }, id => 'p' });
ok($other->publish('/held/n', { text => 'theirs' })->{successful},
   'the other publishes');
is_deeply(texts($nws, 1, 2), [ 'theirs' ], 'its own is not pushed to it');
$nws->reset;

#
# the hold time is over: the connect is answered, the session let go
#

new_publisher($server);
($ws, $id) = held_session($server->port, '/held/d');
ok(until_true(sub { $redis->is_held($id, '/held/d') }), 'held');
($t, $replies) = texts_replies($ws, undef, 6);
ok((grep { $_->{id} eq 'c' && $_->{successful} } @$replies),
   'the held connect is answered when its hold time is over');
ok(!$redis->is_held($id, '/held/d'), 'and its session let go');
ok($redis->cmd('SISMEMBER', "${P}c:/held/d", $id), 'back in c:/held/d');
publish('/held/d', 'd1');
hold($ws, $id);
is_deeply(texts($ws, 1), [ 'd1' ], 'the next connect gets what came between');
$ws->reset;

#
# the worker's link to Redis breaks while it holds a session: the held
# connect is answered with an error, and the session's next connect gets
# what came meanwhile, though the worker, back, went on giving the stream
# to a session it held since (it writes that under a new name)
#

new_publisher($server);
my ($gws, $gid) = held_session($server->port, '/held/g');
ok(until_true(sub { $redis->is_held($gid, '/held/g') }), 'A held');
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
my ($t_, $r_) = texts_replies($gws, undef, 2);
ok((grep { !$_->{successful} } @$r_), "A's held connect fails");
new_publisher($server);
publish('/held/g', 'g1');
my ($hws, $hid) = held_session($server->port, '/held/h');
ok(until_true(sub { $redis->is_held($hid, '/held/h') }),
   'B held, the link back');
publish('/held/h', 'h1');
is_deeply(texts($hws, 1), [ 'h1' ], 'B is given its message');
sleep 0.2;
is_deeply(take_up($server->port, $gid), [ 'g1' ],
          "A's next connect gets what came while its connect failed");
$gws->reset;
$hws->reset;

#
# a worker killed while it holds a session: nothing is lost
#

# (not under valgrind: the worker killed would be valgrind's)
unless (use_valgrind()) {
    new_publisher($server);
    ($ws, $id) = held_session($server->port, '/held/e');
    ok(until_true(sub { $redis->is_held($id, '/held/e') }), 'held');
    publish('/held/e', 'e1');
    is_deeply(texts($ws, 1), [ 'e1' ], 'pushed');
    # (the worker writes how far it gave the stream in the same turn of
    # its event loop: a moment later that is in Redis)
    sleep 0.2;
    my @pids = $server->worker_pids;
    kill 'KILL', @pids;
    ok(worker_restarted($server, @pids),
       'the worker was killed, another one started');
    new_publisher($server);
    publish('/held/e', "e$_") for 2 .. 3;
    is_deeply(take_up($server->port, $id), [ 'e2', 'e3' ],
              'the next connect gets every message after the kill, in '
              . 'order, and not the one pushed before it');
    ok(!$redis->is_held($id, '/held/e'), 'the session is let go');
}

#
# a worker killed, and more published than its channel's log keeps: the
# session's next connect is told its queue overflowed, and the log says
# why
#

unless (use_valgrind()) {
    my $small = $redis->bayeux_server(<<'CONF', 'small:', status => 1);
        bayeux_timeout 4s;
        bayeux_max_queue 3;
CONF
    my ($sws, $sid) = held_session($small->port, '/held/f');
    ok(until_true(sub { $redis->is_held($sid, '/held/f', 'small:') }), 'held');
    my @pids = $small->worker_pids;
    kill 'KILL', @pids;
    ok(worker_restarted($small, @pids),
       'its worker was killed, another one started');
    my $p = Bayeux::Client->new(port => $small->port);
    ok($p->handshake->{successful}, 'a publisher');
    ok($p->publish('/held/f', { text => "f$_" })->{successful},
       "published f$_") for 1 .. 5;
    my $ws = Bayeux::WebSocket->new(port => $small->port);
    $ws->handshake or die $ws->error;
    ws_send($ws, { channel => '/meta/connect', clientId => $sid,
                   connectionType => 'websocket', id => 't',
                   advice => { timeout => 0 } });
    my ($t, $replies) = texts_replies($ws, undef, 1);
    is($replies->[0]{error}, '408::queue_overflow',
       'the next connect: 408::queue_overflow');
    is_deeply($t, [], 'and no message');
    my $why = 'a held session missed messages that the log of its '
            . 'channel no longer had (bayeux_max_queue 3), the session ends';
    like($small->error_log_text, qr/\[warn\].*\Q$why\E/,
         'the error log says why');
    my $ep = $p->endpoint_status;
    is($ep->{queue_overflows}, 1, 'one overflow counted');
    is($ep->{messages}{dropped}{queue_overflow}, 3,
       'the three messages the log still had counted as dropped');
    $small->stop;
}

#
# every key has a TTL
#

my @keys = grep { !/^(nobc|small):|^bayeux:(w:)/ } @{ $redis->cmd('KEYS', '*') };
# (-2: it expired since KEYS listed it)
my @forever = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@forever, [], 'every key has a TTL');

$server->stop;
$nobc->stop;

done_testing();
