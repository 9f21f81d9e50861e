# Held long-polling sessions: a long-polling /meta/connect that parks
# (nothing queued, a timeout; with the ack extension: t/redis/
# 160-held-ack.t) has its session held by
# its worker, as a websocket's is (t/redis/140-held.t): the session moves
# from the channel's subscriber set "c:" to "H:", its hash gets "h" (the
# last message given) and "hl" = 1 (held as long-polling), and a publish
# logs the message once ("l:") without any RPUSH.  The session stays
# held between its connects: the worker keeps what is published
# meanwhile and gives it to the next connect at once, in order, once,
# having written the last one it gives into "h" before the reply leaves
# ("gv"), with all that was published before the connect, even what the
# stream had not brought the worker yet (the "gv" then waits for it).
# Subscribing and unsubscribing keep it held (its worker learns
# the subscriptions).  A connect on another nginx takes the session over
# from there; a disconnect elsewhere, the hold time being over, a worker
# killed between two connects, more published meanwhile than
# bayeux_max_queue, a client that stops connecting: each loses nothing,
# gives nothing twice, and leaves no key without a TTL.  The link broken
# while a reply's "gv" is in flight gives that message again rather than
# never.
# With bayeux_max_inactivity, a session inactive for the period still
# ends at its next connect.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT texts);
use Test::Bayeux::StallProxy;
use Bayeux::Client;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

# two nginx on the same Redis and prefix: one Bayeux server
my ($A, $B) = map { $redis->bayeux_server(<<'CONF') } 1 .. 2;
        bayeux_timeout 2s;
CONF

my $P = 'bayeux:';

# the sequence number of message $text in the log of $ch (its score)
sub log_seq {
    my ($ch, $text, $prefix) = @_;
    my $r = $redis->cmd('ZRANGE', ($prefix // $P) . "l:$ch", 0, -1,
                        'WITHSCORES') || [];
    for (my $i = 0; $i < @$r; $i += 2) {
        return $r->[$i + 1] if $r->[$i] =~ /"text":"\Q$text\E"/;
    }
    return undef;
}

# "h" names message $text of $ch: the last one the worker gave (keys
# under $prefix, the default's if undef)
sub h_is {
    my ($id, $ch, $text, $name, $prefix) = @_;
    my ($h, $seq) = ($redis->session_field($id, 'h', $prefix),
                     log_seq($ch, $text, $prefix));
    ok(defined $h && $h ne '' && defined $seq && $h == $seq, $name)
        or diag('h: ' . ($h // 'undef') . ", $text: " . ($seq // 'undef'));
}

# the texts a client's connects get, the first one already started
# ($h), until it has $want of them or $timeout passed: a connect may be
# answered without them (a subscription made while it was parked)
sub collect {
    my ($c, $h, $want, $timeout) = @_;
    my @t;
    my $end = time + ($timeout // 5);
    for (;;) {
        my $r = $c->connect_finish($h, timeout => 4);
        unless ($r->{reply} && $r->{reply}{successful}) {
            fail('a connect is answered, successful');
            diag explain $r->{messages};
            last;
        }
        push @t, @{ texts($r) };
        last if @t >= $want || time >= $end;
        $h = $c->connect_start;
    }
    return \@t;
}

# a long-polling session on $server subscribed to @channels, its first
# connect done
sub new_session {
    my ($server, @channels) = @_;
    my $c = Bayeux::Client->new(port => $server->port);
    ok($c->handshake->{successful}, 'handshake');
    ok($c->subscribe($_)->{successful}, "subscribed to $_") for @channels;
    my $r = $c->connect;
    ok($r->{reply} && $r->{reply}{successful}, 'first connect');
    return ($c, $c->client_id);
}

#
# a parked long-polling connect: its session held, a publish costs no
# RPUSH, the message is logged and answers the connect
#

new_publisher($A);
my ($c, $id) = new_session($A, '/lp/a');
my $h = $redis->park($A, $c, '/lp/a');
ok(!$redis->is_subscribed($id, '/lp/a'), 'and no longer in c:/lp/a');
is($redis->session_field($id, 'hl'), '1', 'held as long-polling: hl = 1');
ok(($redis->session_field($id, 'h') // '') ne '', 'h is set while held');

my $rpush = $redis->rpush_calls;
publish('/lp/a', 'p1');
my $r = $c->connect_finish($h, timeout => 4);
ok($r->{reply} && $r->{reply}{successful}, 'the parked connect: answered');
is_deeply([ map { [ $_->{channel}, $_->{data} ] } @{ $r->{deliveries} } ],
          [ [ '/lp/a', { text => 'p1' } ] ], 'with the message');
cmp_ok($r->{elapsed}, '<', 1, 'at once');
is($redis->rpush_calls - $rpush, 0, 'no RPUSH');
is($redis->cmd('EXISTS', "${P}q:$id"), 0, 'no queue');
ok(defined log_seq('/lp/a', 'p1'), 'the message is in the log of /lp/a');
h_is($id, '/lp/a', 'p1', 'h names p1, the message given');

#
# held between connects: what is published meanwhile goes to the next
# connect at once, in order, once
#

ok($redis->is_held($id, '/lp/a'), 'between connects: still held');
ok(!$redis->is_subscribed($id, '/lp/a'), '... not in c:/lp/a');
is($redis->session_field($id, 'hl'), '1', '... hl = 1');
publish('/lp/a', "p$_") for 2 .. 4;
is($redis->rpush_calls - $rpush, 0, 'no RPUSH for them either');
is($redis->cmd('EXISTS', "${P}q:$id"), 0, 'no queue');
h_is($id, '/lp/a', 'p1', 'h still names p1: they are not given yet');
$r = $c->connect;
ok($r->{reply} && $r->{reply}{successful}, 'the next connect: answered');
is_deeply(texts($r), [ 'p2', 'p3', 'p4' ], '... with the three, in order');
cmp_ok($r->{elapsed}, '<', 1, '... at once');
h_is($id, '/lp/a', 'p4', 'h names p4');
ok($redis->is_held($id, '/lp/a'), 'still held');

$h = $c->connect_start;
sleep 0.1;
publish('/lp/a', 'p5');
is_deeply(collect($c, $h, 1), [ 'p5' ],
          'the next connect parks, and gets the next message only');
h_is($id, '/lp/a', 'p5', 'h names p5');
is($redis->rpush_calls - $rpush, 0, 'five messages, no RPUSH at all');
is($c->connections, 1, 'the connects came on one keep-alive connection');

#
# the connect and messages published before the worker reads them, in
# the same turn of its event loop, the connect first: its reply gives
# them all, not only the first one, which wakes it.  The worker is
# stopped while the connect and two publishes on B wait for it.
#

{
    my $pb = Bayeux::Client->new(port => $B->port);
    ok($pb->handshake->{successful}, 'a publisher on B');
    my @w = $A->serving_pids;
    is(scalar @w, 1, 'one process of A serves');
    kill 'STOP', @w;
    $h = $c->connect_start;
    ok($pb->publish('/lp/a', { text => "s$_" })->{successful},
       "s$_ published on B, A stopped") for 1 .. 2;
    kill 'CONT', @w;
    $r = $c->connect_finish($h, timeout => 4);
    ok($r->{reply} && $r->{reply}{successful}, 'the connect: answered');
    is_deeply(texts($r), [ 's1', 's2' ], '... with both, in order');
    h_is($id, '/lp/a', 's2', 'h names s2');
}

#
# a connect on the other nginx takes the session over from the last
# message the first worker gave
#

publish('/lp/a', "p$_") for 6 .. 7;
my $cb = elsewhere($c, $B);
$r = $cb->connect;
ok($r->{reply} && $r->{reply}{successful}, 'a connect on B: answered');
is_deeply(texts($r), [ 'p6', 'p7' ],
          '... with what came after p5, in order, and nothing before');
cmp_ok($r->{elapsed}, '<', 1, '... at once');
publish('/lp/a', 'p8');
$r = $c->connect;
ok($r->{reply} && $r->{reply}{successful}, 'then a connect on A: answered');
is_deeply(texts($r), [ 'p8' ],
          '... with p8 only: A let the session go, kept nothing for it');
$h = $redis->park($A, $c, '/lp/a');
publish('/lp/a', 'p9');
is_deeply(collect($c, $h, 1), [ 'p9' ], 'and given p9 only');

#
# connects that go to A and B in turn (no sticky sessions) under a
# stream of publishes, so that each finds messages waiting: each connect
# takes the session over, is given them from the logs (no copy queued),
# and holds the session again, between connects; what is published
# meanwhile costs no RPUSH; each message comes once, in order
#

{
    my @got;
    my ($on_a, $on_b) = ($c, elsewhere($c, $B));
    $r = $c->connect(advice => { timeout => 0 });
    ok($r->{reply} && $r->{reply}{successful}, 'a connect on A, at once');
    push @got, @{ texts($r) };
    my $between = 0;
    for my $round (1 .. 4) {
        my $at = $round % 2 ? $on_b : $on_a;
        my $rp = $redis->rpush_calls;
        publish('/lp/a', "t$round.$_") for 1 .. 2;
        $between += $redis->rpush_calls - $rp;
        $rp = $redis->rpush_calls;
        $r = $at->connect;
        ok($r->{reply} && $r->{reply}{successful},
           'round ' . $round . ': a connect on ' . ($round % 2 ? 'B' : 'A')
           . ', answered');
        cmp_ok($r->{elapsed}, '<', 1, '... at once');
        is($redis->rpush_calls - $rp, 0,
           '... given from the logs: no RPUSH');
        push @got, @{ texts($r) };
        ok(until_true(sub { $redis->is_held($id, '/lp/a') }, 3),
           '... held again between connects: in H:/lp/a');
        ok(!$redis->is_subscribed($id, '/lp/a'), '... not in c:/lp/a');
        is($redis->session_field($id, 'hl'), '1', '... hl = 1');
    }
    is($between, 0, 'the publishes between the connects: no RPUSH');
    is_deeply(\@got, [ map { ("t$_.1", "t$_.2") } 1 .. 4 ],
              'each message once, in order');
    $h = $redis->park($A, $c, '/lp/a');
    publish('/lp/a', 'p10');
    is_deeply(collect($c, $h, 1), [ 'p10' ], 'then a parked connect on A: '
              . 'given p10 only');
}

#
# subscribing and unsubscribing while held, between connects and parked
#

# between connects
publish('/lp/b', 'b0');
ok($c->subscribe('/lp/b')->{successful},
   'subscribed to /lp/b between connects');
ok($redis->is_held($id, '/lp/a') && $redis->is_held($id, '/lp/b'),
   '... still held: in H:/lp/a and H:/lp/b');
publish('/lp/b', 'b1');
publish('/lp/a', 'a1');
$r = $c->connect;
cmp_ok($r->{elapsed}, '<', 1, 'the next connect is answered at once');
my @got = map { "$_->{channel} $_->{data}{text}" } @{ $r->{deliveries} };
is_deeply(\@got, [ '/lp/b b1', '/lp/a a1' ],
          '... with the new channel and the old one, in order, nothing '
          . 'from before the subscription');

# parked (a connect of a session held here: no script call)
$h = $c->connect_start;
sleep 0.1;
ok($redis->is_held($id, '/lp/a') && $redis->is_held($id, '/lp/b'),
   'parked: held on /lp/a and /lp/b');
publish('/lp/c', 'c0');
ok($c->subscribe('/lp/c')->{successful}, 'subscribed to /lp/c, parked');
ok($redis->is_held($id, '/lp/c') && !$redis->is_subscribed($id, '/lp/c'),
   '... still held: in H:/lp/c, not in c:/lp/c');
$rpush = $redis->rpush_calls;
publish('/lp/c', 'c1');
$r = $c->connect_finish($h, timeout => 4);
is_deeply(texts($r), [ 'c1' ],
          'the parked connect is given the message of /lp/c after the '
          . 'subscription, not the one before');
is($redis->rpush_calls - $rpush, 0, '... by the worker: no RPUSH');

$h = $c->connect_start;
sleep 0.1;
ok($c->unsubscribe('/lp/b')->{successful}, 'unsubscribed from /lp/b, parked');
ok(!$redis->is_held($id, '/lp/b') && !$redis->is_subscribed($id, '/lp/b'),
   'neither in H:/lp/b nor in c:/lp/b');
ok($redis->is_held($id, '/lp/a'), '... still held on /lp/a');
publish('/lp/b', 'b2');
publish('/lp/a', 'a2');
$r = $c->connect_finish($h, timeout => 4);
is_deeply(texts($r), [ 'a2' ],
          'the parked connect: nothing of /lp/b any more');
is($redis->rpush_calls - $rpush, 0, '... no RPUSH');

# between connects
ok($c->unsubscribe('/lp/c')->{successful},
   'unsubscribed from /lp/c between connects');
ok($redis->is_held($id, '/lp/a') && !$redis->is_held($id, '/lp/c'),
   '... still held on /lp/a, no longer on /lp/c');
publish('/lp/c', 'c2');
publish('/lp/a', 'a3');
$r = $c->connect;
is_deeply(texts($r), [ 'a3' ], 'nothing of /lp/c any more');
$h = $c->connect_start;
sleep 0.1;
publish('/lp/b', 'b3');
publish('/lp/c', 'c3');
publish('/lp/a', 'a4');
is_deeply(collect($c, $h, 1), [ 'a4' ], 'and nothing else');
ok($redis->is_held($id, '/lp/a'), 'still held on /lp/a');

#
# a disconnect on the other nginx while held: the session is gone
#

$r = elsewhere($c, $B)->disconnect;
ok($r && $r->{successful}, 'disconnected on B, between connects on A');
is($redis->cmd('EXISTS', "${P}s:$id"), 0, 'its hash is gone');
is($redis->cmd('EXISTS', "${P}S:$id"), 0, 'its subscriptions are gone');
ok(!$redis->is_held($id, '/lp/a'), 'not in H:/lp/a');
ok(!$redis->is_subscribed($id, '/lp/a'), 'nor in c:/lp/a');
publish('/lp/a', 'after');
$r = $c->connect;
ok($r->{reply} && !$r->{reply}{successful}, 'the next connect on A fails');
is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
   '... 402::session_unknown');
is_deeply(texts($r), [], '... without the message A kept');

#
# the client goes away while its connect is parked: the session is let
# go from the last message given, and the next connect, on a new
# connection, gets what came after, once
#

new_publisher($A);
my ($g, $gid) = new_session($A, '/lp/g');
$h = $redis->park($A, $g, '/lp/g');
publish('/lp/g', 'g1');
is_deeply(collect($g, $h, 1), [ 'g1' ], 'given g1');
$h = $g->connect_start;
sleep 0.1;
$g->abandon($h);
ok(until_true(sub { $redis->held_by_none($gid) }),
   'held by none when its client left');
ok($redis->is_held($gid, '/lp/g') && !$redis->is_subscribed($gid, '/lp/g'),
   '... still in H:/lp/g, not in c:/lp/g');
publish('/lp/g', "g$_") for 2 .. 3;
$r = $g->connect;
ok($r->{reply} && $r->{reply}{successful}, 'the next connect: answered');
is_deeply(texts($r), [ 'g2', 'g3' ],
          '... with what came after g1, once, in order');

#
# the worker's link to Redis breaks while it keeps a session between
# connects: it forgets the session, and the next connect gets what came
# after the last message given, once
#

new_publisher($A);
my ($l, $lid) = new_session($A, '/lp/l');
$h = $redis->park($A, $l, '/lp/l');
publish('/lp/l', 'l1');
is_deeply(collect($l, $h, 1), [ 'l1' ], 'given l1');
publish('/lp/l', 'l2');
$redis->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
ok(until_true(sub {
       my $p = Bayeux::Client->new(port => $A->port);
       my $r = $p->handshake;
       $r && $r->{successful};
   }, 10), 'the link is back');
new_publisher($A);
publish('/lp/l', 'l3');
$r = $l->connect;
ok($r->{reply} && $r->{reply}{successful},
   'the link back, the next connect: answered');
is_deeply(texts($r), [ 'l2', 'l3' ],
          '... with what came after l1: kept before the break, and after');
$h = $redis->park($A, $l, '/lp/l');
publish('/lp/l', 'l4');
is_deeply(collect($l, $h, 1), [ 'l4' ], 'held again, and given l4 only');

#
# the link breaks while a reply's "gv" is in flight: the reply is sent
# all the same, and as Redis did not run the "gv", the session's next
# connect is given that message again (twice rather than never).  The
# test publishes as the script does (the log, the sequence number, the
# stream) and pauses Redis's writes in the same transaction, so that the
# worker's "gv" waits in Redis while its connection is killed.
#

# how many times the log of $server says its link broke
sub unavailable {
    my ($server) = @_;
    my @n = $server->error_log_text
            =~ /redis \S+ of location "\/cometd" is unavailable/g;
    return scalar @n;
}

my $breaks = unavailable($A);
new_publisher($A);
my ($f, $fid) = new_session($A, '/lp/f');
$h = $redis->park($A, $f, '/lp/f');
{
    my $seq = $redis->cmd('GET', "${P}n") + 1000;
    my $entry = "$seq - - -\n"
              . '{"channel":"/lp/f","data":{"text":"f1"},"id":"f1"}';
    $redis->cmd('MULTI');
    $redis->cmd('ZADD', "${P}l:/lp/f", $seq, $entry);
    $redis->cmd('PEXPIRE', "${P}l:/lp/f", 600_000);
    $redis->cmd('SET', "${P}n", $seq, 'PX', 600_000);
    $redis->cmd('PUBLISH', "${P}N", "/lp/f\n$entry");
    $redis->cmd('CLIENT', 'PAUSE', 3000, 'WRITE');
    $redis->cmd('EXEC');
}
# (A's own command connection, by its worker's pid: B's is in the list
# too, before A's once both links came back in that order; "b": its
# command waits for the pause to end)
my ($apid) = $A->serving_pids;
ok(until_true(sub {
       $redis->cmd('CLIENT', 'LIST')
           =~ /name=bayeux:$apid:cmd [^\n]*flags=b [^\n]*cmd=evalsha/
   }, 2), "the worker's gv is in flight, held by the pause");
my ($cmd_id) =
    $redis->cmd('CLIENT', 'LIST') =~ /id=(\d+) [^\n]* name=bayeux:$apid:cmd /;
$redis->cmd('CLIENT', 'KILL', 'ID', $cmd_id);
$r = $f->connect_finish($h, timeout => 4);
ok($r->{reply} && $r->{reply}{successful},
   'its link killed: the parked connect is answered all the same');
is_deeply(texts($r), [ 'f1' ], '... with f1');
ok(until_true(sub {
       my $p = Bayeux::Client->new(port => $A->port);
       my $r = $p->handshake;
       $r && $r->{successful};
   }, 10), 'the link is back once Redis writes again');
$r = $f->connect;
ok($r->{reply} && $r->{reply}{successful}, 'the next connect: answered');
is_deeply(texts($r), [ 'f1' ],
          '... with f1 again: Redis did not learn it was given');
new_publisher($A);
publish('/lp/f', 'f2');
$r = $f->connect;
is_deeply(texts($r), [ 'f2' ], 'then f2 only');
cmp_ok(unavailable($A), '>', $breaks, 'the link break is logged');

#
# the hold time is over: the connect is answered empty, the session
# stays held
#

new_publisher($A);
my ($d, $did) = new_session($A, '/lp/d');
$h = $redis->park($A, $d, '/lp/d');
$r = $d->connect_finish($h, timeout => 4);
ok($r->{reply} && $r->{reply}{successful},
   'the parked connect is answered when its hold time is over');
is_deeply($r->{deliveries}, [], '... with no message');
cmp_ok($r->{elapsed}, '>', 1.5, '... after bayeux_timeout (2 s)');
ok($redis->is_held($did, '/lp/d'), 'the session stays held: in H:/lp/d');
ok(!$redis->is_subscribed($did, '/lp/d'), '... not in c:/lp/d');
is($redis->session_field($did, 'hl'), '1', '... hl = 1');
publish('/lp/d', 'd1');
$r = $d->connect;
is_deeply(texts($r), [ 'd1' ], 'the next connect gets what came between');
cmp_ok($r->{elapsed}, '<', 1, '... at once');

#
# a worker killed while it holds a session between two connects: the
# next connect gets every message after the last one it gave
#

# (not under valgrind: the worker killed would be valgrind's)
unless (use_valgrind()) {
    # the next connect on the same nginx, its worker restarted
    new_publisher($A);
    my ($e, $eid) = new_session($A, '/lp/e');
    $h = $redis->park($A, $e, '/lp/e');
    publish('/lp/e', 'e1');
    is_deeply(collect($e, $h, 1), [ 'e1' ], 'given e1');
    publish('/lp/e', 'e2');
    # (kept by the worker, not given)
    sleep 0.2;
    h_is($eid, '/lp/e', 'e1', 'h names e1, not e2');
    my @pids = $A->worker_pids;
    kill 'KILL', @pids;
    ok(worker_restarted($A, @pids), 'the worker was killed, another started');
    new_publisher($A);
    publish('/lp/e', 'e3');
    $r = $e->connect;
    ok($r->{reply} && $r->{reply}{successful}, 'the next connect on A');
    is_deeply(texts($r), [ 'e2', 'e3' ],
              '... gets e2 and e3, in order, not e1');

    # the next connect on the other nginx
    new_publisher($A);
    my ($k, $kid) = new_session($A, '/lp/k');
    $h = $redis->park($A, $k, '/lp/k');
    publish('/lp/k', 'k1');
    is_deeply(collect($k, $h, 1), [ 'k1' ], 'given k1');
    publish('/lp/k', 'k2');
    sleep 0.2;
    @pids = $A->worker_pids;
    kill 'KILL', @pids;
    new_publisher($B);
    publish('/lp/k', 'k3');
    $r = elsewhere($k, $B)->connect;
    ok($r->{reply} && $r->{reply}{successful}, 'the next connect on B');
    is_deeply(texts($r), [ 'k2', 'k3' ],
              '... gets k2 and k3, in order, not k1');
    ok(worker_restarted($A, @pids), "A's worker started again");
}

#
# more published between two connects than bayeux_max_queue: the next
# connect is told its queue overflowed, and the session ends
#

{
    my $small = $redis->bayeux_server(<<'CONF', 'small:', status => 1);
        bayeux_timeout 2s;
        bayeux_max_queue 3;
CONF
    new_publisher($small);
    my ($f, $fid) = new_session($small, '/lp/f');
    $h = $redis->park($small, $f, '/lp/f', 'small:');
    publish('/lp/f', 'f0');
    is_deeply(collect($f, $h, 1), [ 'f0' ], 'given f0');
    publish('/lp/f', "f$_") for 1 .. 5;
    $r = $f->connect;
    ok($r->{reply} && !$r->{reply}{successful}, 'the next connect fails');
    is($r->{reply} && $r->{reply}{error}, '408::queue_overflow',
       '... 408::queue_overflow');
    is($r->{reply} && $r->{reply}{advice}{reconnect}, 'handshake',
       '... told to handshake');
    is_deeply(texts($r), [], '... and no message');
    $r = $f->connect(advice => { timeout => 0 });
    is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
       'the session ended');
    # (its worker kept three, and ended it at the fourth: as a full queue
    # ends a session not held)
    my $why = 'bayeux: queue of a session is full (bayeux_max_queue 3,';
    ok($small->wait_for_log(qr/\[warn\] .*\Q$why\E/, timeout => 2),
       'the error log says why');
    my $ep = $f->endpoint_status;
    is($ep->{queue_overflows}, 1, 'one overflow counted');
    is($ep->{messages}{dropped}{queue_overflow}, 5,
       'the five messages it missed counted as dropped');
    $small->stop;
    unlike($small->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert (bayeux_max_queue 3)');
}

#
# a client that stops connecting: its session ends, held or not
#

{
    my $exp = $redis->bayeux_server(<<'CONF', 'exp:');
        bayeux_timeout 2s;
        bayeux_interval 0;
        bayeux_max_interval 1s;
CONF
    my ($x, $xid) = new_session($exp, '/lp/x');
    $h = $redis->park($exp, $x, '/lp/x', 'exp:');
    new_publisher($exp);
    publish('/lp/x', 'x1');
    is_deeply(collect($x, $h, 1), [ 'x1' ], 'given x1');
    my $t0 = time;
    publish('/lp/x', 'x2');
    ok(until_true(sub { !$redis->cmd('EXISTS', "exp:s:$xid") }, 5),
       'the client connects no more: its session ends');
    cmp_ok(time - $t0, '<', 1 + 1.5,
           '... within bayeux_interval + bayeux_max_interval (1 s), '
           . 'and a little');
    $r = $x->connect(advice => { timeout => 0 });
    is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
       'its next connect: 402::session_unknown');
    is_deeply(texts($r), [], '... without the message its worker kept');
    $exp->stop;
    unlike($exp->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert (bayeux_max_interval 1s)');
}

#
# bayeux_max_inactivity (client): held all the same.  The worker learns
# how long the session may stay inactive, and sends its connects after
# that to the script, which holds it again if there was activity
# meanwhile, and ends it if not.
#

{
    my $ina = $redis->bayeux_server(<<'CONF', 'ina:');
        bayeux_timeout 300ms;
        bayeux_max_inactivity 4s;
CONF
    new_publisher($ina);
    my ($i, $iid) = new_session($ina, '/lp/i');
    my $t0 = time;
    $h = $redis->park($ina, $i, '/lp/i', 'ina:');
    my $rp = $redis->rpush_calls;
    publish('/lp/i', 'i1');
    is_deeply(collect($i, $h, 1), [ 'i1' ],
              'held with bayeux_max_inactivity, given i1');
    is($redis->rpush_calls - $rp, 0, '... without RPUSH');

    sleep 1.5;
    my $active = time;
    ok($i->publish('/lp/other', { text => 'x' })->{successful},
       'the client publishes: activity');
    my $ok = 1;
    while (time < $t0 + 4.3) {
        my $r = $i->connect;
        $ok = 0 unless $r->{reply} && $r->{reply}{successful};
    }
    ok($ok, 'its connects go on past the period from its handshake');
    ok(time < $active + 4, '... still within the period from its publish');
    ok($redis->is_held($iid, '/lp/i', 'ina:'), 'held again');
    publish('/lp/i', 'i2');
    $h = $i->connect_start;
    is_deeply(collect($i, $h, 1), [ 'i2' ], 'given i2');

    my $r;
    do {
        $r = $i->connect;
    } while ($r->{reply} && $r->{reply}{successful} && time < $active + 5);
    is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
       'no activity for the period: a connect ends the session');
    cmp_ok(time - $active, '<', 4 + 0.3 + 0.5,
           '... within bayeux_max_inactivity + bayeux_timeout, '
           . 'and a little');
    like($ina->error_log_text,
         qr/a session was inactive for bayeux_max_inactivity/, 'logged');
    $ina->stop;
}

#
# bayeux_max_inactivity ... client_server: held too.  What the worker
# gives counts as activity: it moves the worker's own deadline, and
# Redis learns of it from the logs when the session is let go, so that a
# connect on the other nginx finds the session active.
#

{
    my ($csa, $csb) = map { $redis->bayeux_server(<<'CONF', 'ics:') } 1 .. 2;
        bayeux_timeout 300ms;
        bayeux_max_inactivity 3s client_server;
CONF
    new_publisher($csa);
    my ($i, $iid) = new_session($csa, '/lp/s');
    my $t0 = time;
    $h = $redis->park($csa, $i, '/lp/s', 'ics:');
    my $rp = $redis->rpush_calls;
    publish('/lp/s', 's1');
    is_deeply(collect($i, $h, 1), [ 's1' ],
              'held with bayeux_max_inactivity client_server, given s1');

    # the client sends nothing but connects; the server's messages keep
    # its session alive past the period
    my ($ok, @got, $last) = (1);
    for my $k (2 .. 5) {
        sleep 0.9;
        publish('/lp/s', "s$k");
        $last = time;
        my $r = $i->connect;
        $ok = 0 unless $r->{reply} && $r->{reply}{successful};
        push @got, @{ texts($r) };
    }
    ok($ok, 'its connects go on past the period, given messages');
    is_deeply(\@got, [ 's2', 's3', 's4', 's5' ], '... s2 to s5, in order');
    is($redis->rpush_calls - $rp, 0, '... without RPUSH: held throughout');
    ok(time > $t0 + 3, '(past the period from its last message)');

    my $r = elsewhere($i, $csb)->connect;
    ok($r->{reply} && $r->{reply}{successful},
       'a connect on the other nginx: the session is active (the messages '
       . 'given were its activity)');
    ok($redis->is_held($iid, '/lp/s', 'ics:'), '... held there');

    my $o = elsewhere($i, $csb);
    do {
        $r = $o->connect;
    } while ($r->{reply} && $r->{reply}{successful} && time < $last + 5);
    is($r->{reply} && $r->{reply}{error}, '402::session_unknown',
       'no message and no activity for the period: a connect ends it');
    cmp_ok(time - $last, '<', 3 + 0.3 + 0.5,
           '... within bayeux_max_inactivity + bayeux_timeout, '
           . 'and a little');
    cmp_ok(time - $last, '>', 3, '... not before the period');
    $csa->stop;
    $csb->stop;
}

#
# Redis writes a message to the worker after the reply to its publish
# (here a proxy holds back the worker's stream): a parked connect woken
# by the first of two messages Redis ran before the connect's "gv" gives
# both, as the "gv" finds the second logged for the session and waits
# for the stream; one whose later messages are for other channels only
# is answered at once
#

{
    my $proxy = Test::Bayeux::StallProxy->new($redis->port);
    my $C = $redis->bayeux_server(<<'CONF', 'stall:',
        bayeux_timeout 2s;
CONF
        url => 'redis://127.0.0.1:' . $proxy->port . '/0');

    new_publisher($C);
    my ($sc, $sid) = new_session($C, '/st/a');
    my ($sd, $did) = new_session($C, '/st/b');
    my $sh = $redis->park($C, $sc, '/st/a', 'stall:');

    $proxy->stall;
    publish('/st/a', $_) for 'a1', 'a2';
    ok(until_true(sub { $proxy->held >= 2 }),
       'the stream of both held back by the proxy');
    my $from = -s $C->error_log_file;
    $proxy->release(1);
    ok($C->wait_for_log(qr/held session \Q$sid\E waits for the stream/,
                        offset => $from, timeout => 3),
       'a1 given to the worker: its "gv" finds a2, and waits for the stream');
    $proxy->resume;
    my $sr = $sc->connect_finish($sh, timeout => 4);
    ok($sr->{reply} && $sr->{reply}{successful}, 'the connect: answered');
    is_deeply(texts($sr), [ 'a1', 'a2' ], '... with both, in order');
    h_is($sid, '/st/a', 'a2', 'h names a2', 'stall:');

    $sh = $redis->park($C, $sc, '/st/a', 'stall:');
    my $dh = $redis->park($C, $sd, '/st/b', 'stall:');
    $proxy->stall;
    publish('/st/a', 'a3');
    publish('/st/b', 'b1');
    ok(until_true(sub { $proxy->held >= 2 }),
       'the stream of a3 and b1 held back');
    $from = -s $C->error_log_file;
    $proxy->release(1);
    $sr = $sc->connect_finish($sh, timeout => 4);
    is_deeply(texts($sr), [ 'a3' ],
              'b1 is for another channel: the connect gets a3 at once');
    unlike($C->error_log_text($from), qr/waits for the stream/,
           '... without waiting for the stream');
    $proxy->resume;
    $sr = $sd->connect_finish($dh, timeout => 4);
    is_deeply(texts($sr), [ 'b1' ], 'and the other session b1');

    # the link breaks while the reply waits for the stream: nothing was
    # written, and the connect after the break gets both
    $sh = $redis->park($C, $sc, '/st/a', 'stall:');
    $proxy->stall;
    publish('/st/a', $_) for 'a4', 'a5';
    ok(until_true(sub { $proxy->held >= 2 }),
       'the stream of a4 and a5 held back');
    $from = -s $C->error_log_file;
    $proxy->release(1);
    ok($C->wait_for_log(qr/held session \Q$sid\E waits for the stream/,
                        offset => $from, timeout => 3),
       'the reply waits for the stream');
    $proxy->drop;
    $sr = $sc->connect_finish($sh, timeout => 4);
    ok($sr->{reply} && !$sr->{reply}{successful},
       'the link broken: the connect is answered unsuccessful')
        or diag explain $sr->{messages};
    is_deeply(texts($sr), [], '... without the messages');
    my @seen;
    ok(until_true(sub {
           my $r = $sc->connect(timeout => 4);
           push @seen, @{ texts($r) };
           $r->{reply} && $r->{reply}{successful};
       }, 10), 'the link back, a connect is answered');
    is_deeply(\@seen, [ 'a4', 'a5' ], '... with a4 and a5, in order');

    $C->stop;
    $proxy->stop;
}

#
# every key has a TTL
#

# (every prefix: bayeux:, small:, exp:)
my @keys = @{ $redis->cmd('KEYS', '*') };
cmp_ok(scalar @keys, '>', 0, 'there are keys to look at');
# (-2: it expired since KEYS listed it)
my @forever = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@forever, [], 'every key has a TTL');

$A->stop;
$B->stop;
unlike($B->error_log_text, qr/\[(alert|crit|emerg)\]/, 'no alert on B');

done_testing();
