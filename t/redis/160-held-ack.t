# Held sessions whose connects acknowledge (CometD's ack extension): a
# long-polling or websocket /meta/connect that acknowledges all it was
# given and parks has its session held by its worker, as one that does
# not acknowledge is (t/redis/150-held-polling.t): a publish costs no
# RPUSH, and the next connect on the same worker is answered without a
# script call.  Each reply's messages are written into Redis as its batch
# before the reply leaves ("gv": "ha" where they begin in the logs, "ak"
# the batch): a reply that was lost is given again, whole, in order,
# whichever nginx the next connect comes to, and whether the worker that
# gave it is alive or not; an acknowledged batch is never given again.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT texts ack_connect);
use Bayeux::Client;
use Bayeux::WebSocket;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $redis = start_redis();

# two nginx on the same Redis and prefix: one Bayeux server
my ($A, $B) = map { $redis->bayeux_server(<<'CONF') } 1 .. 2;
        bayeux_timeout 2s;
CONF

# starts a connect acknowledging $ack and waits until it parked: Redis
# holds its session on $ch (keys under $prefix, the default's if undef)
sub ack_park {
    my ($c, $ack, $ch, $prefix) = @_;
    my $id = $c->client_id;
    my $h = $c->connect_start(ext => { ack => $ack });
    ok(until_true(sub { $redis->is_held($id, $ch, $prefix) }, 3),
       "parked, its session held on $ch");
    sleep 0.2;
    return $h;
}

sub ack_finish {
    my ($c, $h) = @_;
    my $r = $c->connect_finish($h, timeout => 4);
    ok($r->{reply} && $r->{reply}{successful}, 'the parked connect: answered');
    return (texts($r), $r->{reply}{ext}{ack}, $r);
}

# a long-polling session on $server that acknowledges, subscribed to
# @channels, its first connect done
sub new_session {
    my ($server, @channels) = @_;
    my $c = Bayeux::Client->new(port => $server->port);
    ok($c->handshake(ext => { ack => JSON::PP::true })->{successful},
       'handshake, with the ack extension');
    ok($c->subscribe($_)->{successful}, "subscribed to $_") for @channels;
    ack_connect($c, 0);
    return ($c, $c->client_id);
}

# held by a worker between long-polling connects, on $ch
sub held_polling_ok {
    my ($id, $ch, $name) = @_;
    ok(until_true(sub { $redis->is_held($id, $ch)
                        && ($redis->session_field($id, 'hl') // '') eq '1' },
                  3),
       $name);
}

# what was published comes to the worker on the stream, which may be
# after the publisher's reply: a connect that should find it kept waits
sub settle { sleep 0.2 }

#
# held: batches numbered from 1, no RPUSH, the next connect answered by
# the worker
#

new_publisher($A);
my ($c, $id) = new_session($A, '/k/a');
my $h = ack_park($c, 0, '/k/a');
is($redis->session_field($id, 'hl'), '1', 'held as long-polling: hl = 1');
my $rpush = $redis->rpush_calls;
publish('/k/a', 'a1');
my ($got, $batch) = ack_finish($c, $h);
is_deeply($got, [ 'a1' ], 'the parked connect gets a1');
is($batch, 1, '... as batch 1');
like($redis->session_field($id, 'ak') // '', qr/^1:1:\d+,$/,
     'Redis keeps batch 1: one message (ak)');
ok(($redis->session_field($id, 'ha') // '') ne '',
   '... logged after ha');

publish('/k/a', "a$_") for 2 .. 3;
settle();
($got, $batch) = ack_connect($c, 1);
is_deeply($got, [ 'a2', 'a3' ], 'batch 1 acknowledged: a2 and a3');
is($batch, 2, '... as batch 2');
like($redis->session_field($id, 'ak') // '', qr/^2:2:\d+,$/,
     'Redis keeps batch 2 only');
ok($redis->is_held($id, '/k/a'), 'still held');

$h = $c->connect_start(ext => { ack => 2 });
sleep 0.2;
publish('/k/a', 'a4');
($got, $batch) = ack_finish($c, $h);
is_deeply($got, [ 'a4' ], 'acknowledged, parked, given a4');
is($batch, 3, '... as batch 3');
is($redis->rpush_calls - $rpush, 0, 'four messages, no RPUSH');
is($c->connections, 1, 'the connects came on one keep-alive connection');

# the hold time over: the last batch is named again
($got, $batch, my $r) = ack_connect($c, 3);
is_deeply($got, [], 'nothing new: empty');
cmp_ok($r->{elapsed}, '>=', 1.9, '... after the hold time');
is($batch, 3, '... naming batch 3');
ok($redis->is_held($id, '/k/a'), 'still held');

#
# a lost reply, the next connect on the same nginx: given again, whole,
# first
#

publish('/k/a', 'a5');
settle();
($got, $batch) = ack_connect($c, 3);
is_deeply($got, [ 'a5' ], 'a5');
is($batch, 4, '... as batch 4');
publish('/k/a', 'a6');
settle();
($got, $batch) = ack_connect($c, 3);
is_deeply($got, [ 'a5', 'a6' ],
          'batch 4 lost: given again, then the new a6');
is($batch, 5, '... as batch 5');
($got, $batch) = ack_connect($c, 4);
is_deeply($got, [ 'a6' ], 'batch 4 arrived, 5 did not: a6 again');
is($batch, 5, '... batch 5');
$h = ack_park($c, 5, '/k/a');
publish('/k/a', 'a7');
($got, $batch) = ack_finish($c, $h);
is_deeply($got, [ 'a7' ], 'all acknowledged: held again, given a7 only');
is($batch, 6, '... as batch 6');

#
# the next connect on the other nginx
#

publish('/k/a', 'a8');
my $cb = elsewhere($c, $B);
($got, $batch) = ack_connect($cb, 5);
is_deeply($got, [ 'a7', 'a8' ],
          'on B, batch 6 lost: a7 again, then a8, in order');
is($batch, 7, '... as batch 7');

# back on A, acknowledged
$h = ack_park($c, 7, '/k/a');
publish('/k/a', 'a9');
($got, $batch) = ack_finish($c, $h);
is_deeply($got, [ 'a9' ], 'on A again, acknowledged: a9');
is($batch, 8, '... as batch 8');
publish('/k/a', 'a10');
($got, $batch) = ack_connect($cb, 8);
is_deeply($got, [ 'a10' ],
          'on B, batch 8 acknowledged: a10 only, a9 not again');
is($batch, 9, '... as batch 9');

#
# connects that go to A and B in turn, each acknowledging the last batch,
# under a stream of publishes, so that each finds messages waiting: each
# one answered with them holds the session again, and what is published
# meanwhile costs no RPUSH; the connect takes the session over and gives
# what it missed from the logs, its batch a range of them ("ha"), as the
# worker's batches are, not copied into the queue; a batch lost is given
# again by the nginx that holds the session, or by the other
#

{
    my ($on_a, $on_b, @got) = ($c, $cb);
    my ($between, $taking) = (0, 0);
    for my $round (1 .. 4) {
        my $at = $round % 2 ? $on_a : $on_b;
        my $rp = $redis->rpush_calls;
        publish('/k/a', "r$round.$_") for 1 .. 2;
        $between += $redis->rpush_calls - $rp;
        settle();
        $rp = $redis->rpush_calls;
        my ($t, $next) = ack_connect($at, $batch);
        $taking += $redis->rpush_calls - $rp;
        push @got, @$t;
        is($next, $batch + 1, "round $round, on " . ($round % 2 ? 'A' : 'B')
           . ': batch ' . ($batch + 1));
        $batch = $next;
        ok(until_true(sub { $redis->is_held($id, '/k/a') }, 3),
           '... held again between connects: in H:/k/a');
        ok(!$redis->is_subscribed($id, '/k/a'), '... not in c:/k/a');
        like($redis->session_field($id, 'ak') // '', qr/^$batch:2:\d+,$/,
             '... its batch kept (ak)');
        ok(($redis->session_field($id, 'ha') // '') ne '',
           '... as a range of the logs (ha)');
        is($redis->cmd('EXISTS', "bayeux:q:$id"), 0, '... no queue');
        is($redis->session_field($id, 'qb'), '0', '... nothing queued (qb)');
    }
    is($between, 0, 'the publishes between the connects: no RPUSH');
    is($taking, 0, 'the connects that took the session over: no RPUSH');
    is_deeply(\@got, [ map { ("r$_.1", "r$_.2") } 1 .. 4 ],
              'each message once, in order');

    # B holds it: a connect there that does not acknowledge the last batch
    publish('/k/a', 'r5');
    settle();
    my ($t, $next) = ack_connect($on_b, $batch - 1);
    is_deeply($t, [ 'r4.1', 'r4.2', 'r5' ],
              'on B, the last batch lost: given again, first, then r5');
    is($next, $batch + 1, '... as batch ' . ($batch + 1));
    $batch = $next;
    publish('/k/a', 'r6');
    settle();
    my $rp = $redis->rpush_calls;
    ($t, $next) = ack_connect($on_b, $batch);
    is_deeply($t, [ 'r6' ], 'acknowledged on B: r6 only');
    is($next, $batch + 1, '... as batch ' . ($batch + 1));
    is($redis->rpush_calls - $rp, 0, '... given by the worker: no RPUSH');
    is($redis->cmd('EXISTS', "bayeux:q:$id"), 0,
       '... the acknowledged batches are gone from the queue');
    $batch = $next;
    publish('/k/a', 'r7');
    settle();
    ($t, $next) = ack_connect($on_a, $batch);
    is_deeply($t, [ 'r7' ], 'then on A, acknowledged: r7 only');
    $batch = $next;

    # A holds it, its batch a range of the logs: a connect on B that
    # does not acknowledge it
    publish('/k/a', 'r8');
    settle();
    ($t, $next) = ack_connect($on_b, $batch - 1);
    is_deeply($t, [ 'r7', 'r8' ],
              'on B, the batch A gave lost: given again, first, then r8');
    is($next, $batch + 1, '... as batch ' . ($batch + 1));
    $batch = $next;
    publish('/k/a', 'r9');
    settle();
    ($t, $next) = ack_connect($on_a, $batch);
    is_deeply($t, [ 'r9' ], 'then on A, acknowledged: r9 only');
    $batch = $next;
}

#
# connects that ask not to wait (advice.timeout 0), each acknowledging
# the last batch, on either nginx: answered at once, with nothing or with
# what was published, and the session held again each time, so that what
# is published between them costs no RPUSH, nor does a connect that takes
# the session over from the other nginx
#

{
    my ($between, $t, $next, $r) = (0);
    for my $step ([ A => $c, [] ], [ B => $cb, [ 't1' ] ],
                  [ B => $cb, [ 't2' ] ], [ A => $c, [] ])
    {
        my ($on, $at, $want) = @$step;
        my $rp = $redis->rpush_calls;
        publish('/k/a', $_) for @$want;
        settle();
        ($t, $next, $r) = ack_connect($at, $batch, advice => { timeout => 0 });
        $between += $redis->rpush_calls - $rp;
        is_deeply($t, $want, "advice.timeout 0 on $on: given [@$want]");
        cmp_ok($r->{elapsed}, '<', 1, '... at once');
        is($next, @$want ? $batch + 1 : $batch,
           '... naming batch ' . (@$want ? $batch + 1 : $batch));
        $batch = $next;
        ok(until_true(sub { $redis->is_held($id, '/k/a') }, 3),
           '... held again: in H:/k/a');
        ok(!$redis->is_subscribed($id, '/k/a'), '... not in c:/k/a');
    }
    is($between, 0, 'the publishes and the connects: no RPUSH');
}

#
# a channel subscribed while another nginx holds the session: a connect
# that takes it over gives what was logged for it after the subscription
# only, as its batch from the logs; and so does the connect that finds
# that batch lost and gets it again, on the first nginx
#

{
    # (another session on /z/b, for its log to keep what is published)
    my ($other) = new_session($A, '/z/b');
    my ($z, $zid) = new_session($A, '/z/a');
    ack_connect($z, 0, advice => { timeout => 0 });
    held_polling_ok($zid, '/z/a', 'held by A, nothing given');
    publish('/z/b', 'before');
    ok($z->subscribe('/z/b')->{successful}, 'subscribed to /z/b, held');
    publish('/z/a', 'a1');
    publish('/z/b', 'b1');
    settle();
    my $zb = elsewhere($z, $B);
    my ($t, $n) = ack_connect($zb, 0);
    is_deeply($t, [ 'a1', 'b1' ],
              'on B: a1 and b1, not what /z/b had before the subscription');
    is($n, 1, '... as batch 1');
    ok(($redis->session_field($zid, 'ha') // '') ne '',
       '... as a range of the logs (ha)');
    ($t, $n) = ack_connect($z, 0);
    is_deeply($t, [ 'a1', 'b1' ],
              'on A, batch 1 lost: a1 and b1 again, not what came before');
    is($n, 1, '... as batch 1 still');
}

#
# unsubscribing with a batch not yet acknowledged, or parked
#

new_publisher($A);
my ($u, $uid) = new_session($A, '/u/a', '/u/b');
$h = ack_park($u, 0, '/u/a');
publish('/u/a', 'u1');
publish('/u/b', 'v1');
($got, $batch) = ack_finish($u, $h);
if (@$got < 2) {
    # (answered by u1 alone, v1 next)
    my ($more, $next) = ack_connect($u, $batch);
    ($got, $batch) = ([ @$got, @$more ], $next);
}
is_deeply($got, [ 'u1', 'v1' ], 'given u1 and v1');
my $last = $batch;
publish('/u/b', 'v2');
publish('/u/a', 'u2');
settle();
($got, $batch) = ack_connect($u, $last);
is_deeply($got, [ 'v2', 'u2' ], 'then v2 and u2');
ok($u->unsubscribe('/u/b')->{successful},
   'unsubscribed from /u/b, the batch not acknowledged');
($got, $batch) = ack_connect($u, $last);
is_deeply($got, [ 'v2', 'u2' ], 'the lost batch: given again, whole');
$last = $batch;
$h = ack_park($u, $last, '/u/a');
ok($u->subscribe('/u/c')->{successful},
   'subscribed to /u/c while parked, all acknowledged');
ok($redis->is_held($uid, '/u/a') && $redis->is_held($uid, '/u/c'),
   '... still held: in H:/u/a and H:/u/c');
publish('/u/a', 'u3');
($got, $batch) = ack_finish($u, $h);
$last = $batch // $last;
is_deeply($got, [ 'u3' ],
          'the parked connect is given u3 only: nothing acknowledged again');

# parked, all acknowledged, the batch still in Redis: an unsubscribe
# lets the session go there and queues the batch, which the take drops
$h = ack_park($u, $last, '/u/a');
publish('/u/a', 'u4');
($got, $batch) = ack_finish($u, $h);
is_deeply($got, [ 'u4' ], 'held again, given u4');
like($redis->session_field($uid, 'ak') // '', qr/^$batch:1:\d+,$/,
     '... as the batch Redis keeps');
$h = ack_park($u, $batch, '/u/a');
like($redis->session_field($uid, 'ak') // '', qr/^$batch:1:\d+,$/,
     'acknowledged by a connect that parked: Redis still keeps it');
ok($u->unsubscribe('/u/c')->{successful},
   'unsubscribed from /u/c while parked');
publish('/u/a', 'u5');
$last = $batch;
($got, $batch) = ack_finish($u, $h);
unless (@$got) {
    ($got, $batch) = ack_connect($u, $batch // $last);
}
is_deeply($got, [ 'u5' ], 'given u5 only: u4 not again');

#
# websocket: deliveries in connect replies, held all the same
#

my $ws = Bayeux::WebSocket->new(port => $A->port);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                   supportedConnectionTypes => ['websocket'],
                   ext => { ack => JSON::PP::true }, id => 'h' } ]);
my $wid = $ws->recv_json(timeout => 5)->[0]{clientId};
ok($wid, 'websocket handshake');
$ws->send_json([ { channel => '/meta/subscribe', clientId => $wid,
                   subscription => '/w/a', id => 's' } ]);
$ws->recv_json(timeout => 5);

# what the connect acknowledging $ack gets: texts and batch
sub ws_connect {
    my ($ack, $before) = @_;
    $ws->send_json([ { channel => '/meta/connect', clientId => $wid,
                       connectionType => 'websocket', id => "c$ack",
                       ext => { ack => $ack } } ]);
    $before->() if $before;
    my (@t, $reply);
    my $end = time + 4;
    while (!$reply && time < $end) {
        my $m = $ws->recv_json(timeout => $end - time) or last;
        for (@$m) {
            if ($_->{channel} eq '/meta/connect') { $reply = $_ }
            else { push @t, $_->{data}{text} }
        }
    }
    ok($reply && $reply->{successful}, "websocket connect ($ack): answered");
    return (\@t, $reply && $reply->{ext}{ack});
}

ws_connect(0);
$rpush = $redis->rpush_calls;
($got, $batch) = ws_connect(0, sub {
    ok(until_true(sub { $redis->is_held($wid, '/w/a') }, 3),
       'the websocket session is held');
    publish('/w/a', 'w1');
});
is_deeply($got, [ 'w1' ], 'in the connect reply: w1');
is($batch, 1, '... as batch 1');
publish('/w/a', 'w2');
settle();
($got, $batch) = ws_connect(1);
is_deeply($got, [ 'w2' ], 'the next connect: w2');
is($batch, 2, '... as batch 2');
is($redis->rpush_calls - $rpush, 0, 'no RPUSH');
$ws->close;

#
# a worker killed: a batch not acknowledged is given again on the other
# nginx, an acknowledged one is not
# (not under valgrind: the worker killed would be valgrind's)
#

SKIP: {
    skip 'valgrind', 12 if $ENV{TEST_NGINX_USE_VALGRIND};

    new_publisher($B);
    my ($e) = new_session($A, '/e/a');
    $h = ack_park($e, 0, '/e/a');
    publish('/e/a', 'e1');
    ($got, $batch) = ack_finish($e, $h);
    is_deeply($got, [ 'e1' ], 'e1, as batch 1');
    my @pids = $A->worker_pids;
    kill 'KILL', @pids;
    publish('/e/a', 'e2');
    ($got, $batch) = ack_connect(elsewhere($e, $B), 0);
    is_deeply($got, [ 'e1', 'e2' ],
              "A's worker killed, batch 1 lost: on B, e1 again, then e2");
    ok(worker_restarted($A, @pids), "A's worker started again");

    new_publisher($B);
    my ($f) = new_session($A, '/f/a');
    $h = ack_park($f, 0, '/f/a');
    publish('/f/a', 'f1');
    ack_finish($f, $h);
    ack_park($f, 1, '/f/a');
    @pids = $A->worker_pids;
    kill 'KILL', @pids;
    publish('/f/a', 'f2');
    ($got, $batch) = ack_connect(elsewhere($f, $B), 1);
    is_deeply($got, [ 'f2' ],
              "batch 1 acknowledged, A's worker killed: on B, f2 only");
    ok(worker_restarted($A, @pids), "A's worker started again");
}

#
# more published between two connects than bayeux_max_queue while a batch
# is not acknowledged yet: the session ends as a full queue ends, the
# batch and all it missed counted as dropped (as the queue of a session
# not held keeps the batch and counts it)
#

{
    my $small = $redis->bayeux_server(<<'CONF', 'small:', status => 1);
        bayeux_timeout 2s;
        bayeux_max_queue 3;
CONF
    new_publisher($small);
    my ($f) = new_session($small, '/q/f');
    my $fh = ack_park($f, 0, '/q/f', 'small:');
    publish('/q/f', 'q0');
    my ($qgot, $qbatch) = ack_finish($f, $fh);
    is_deeply($qgot, [ 'q0' ], 'given q0 as a batch');
    publish('/q/f', "q$_") for 1 .. 4;
    settle();
    my $qr = $f->connect(ext => { ack => $qbatch }, timeout => 4);
    is($qr->{reply} && $qr->{reply}{error}, '408::queue_overflow',
       'the next connect: 408::queue_overflow');
    is_deeply(texts($qr), [], '... and no message');
    my $ep = $f->endpoint_status;
    is($ep->{queue_overflows}, 1, 'one overflow counted');
    is($ep->{messages}{dropped}{queue_overflow}, 5,
       'the batch not acknowledged and the four after it counted as dropped');
    ok($small->wait_for_log(qr/\[warn\] .*bayeux: queue of a session is full/,
                            timeout => 2),
       'the error log says why');

    # its batch acknowledged (a connect held to its timeout): only the
    # four after it are dropped
    my ($g) = new_session($small, '/q/g');
    my $gh = ack_park($g, 0, '/q/g', 'small:');
    publish('/q/g', 'g0');
    my ($ggot, $gbatch) = ack_finish($g, $gh);
    is_deeply($ggot, [ 'g0' ], 'given g0 as a batch');
    my ($empty) = ack_connect($g, $gbatch);
    is_deeply($empty, [], 'acknowledged, held to its timeout: nothing');
    publish('/q/g', "g$_") for 1 .. 4;
    settle();
    $qr = $g->connect(ext => { ack => $gbatch }, timeout => 4);
    is($qr->{reply} && $qr->{reply}{error}, '408::queue_overflow',
       'the next connect: 408::queue_overflow');
    $ep = $g->endpoint_status;
    is($ep->{queue_overflows}, 2, 'a second overflow counted');
    is($ep->{messages}{dropped}{queue_overflow}, 5 + 4,
       'the four after the acknowledged batch counted as dropped');
    $small->stop;
}

# no key without a TTL
my @keys = grep { !/^bayeux:w:/ } @{ $redis->cmd('KEYS', '*') };
my @forever = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@forever, [], 'no key without a TTL');

$A->stop;
$B->stop;
# (but for the workers killed)
unlike($_->error_log_text,
       qr/\[(alert|crit|emerg)\](?!.*exited on signal 9)/, 'no alert')
    for $A, $B;

done_testing();
