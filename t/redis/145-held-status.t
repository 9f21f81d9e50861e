# What bayeux_status tells of held sessions: "sessions_held" (the gauge
# bayeux_redis_sessions_held) counts the sessions the workers give
# messages from the channels' logs, and "messages_queued"
# (bayeux_redis_messages_queued_total) the copies of published messages
# Redis queued, one per session not held: the work per subscriber that
# held sessions spare it.  That includes the copies a script makes when it
# lets a held session go: at an unsubscribe before its first connect;
# when a lazy message, which the worker does not give itself, comes for a
# parked connect of a session it holds.  A session whose client went
# away (a websocket closed, a long-polling client that did not come back
# within the refresh period) stays held, by none: no copy.  A
# long-polling connect that holds the session again at once (its first,
# or one on another nginx, which takes it over) gives what the session
# missed from the logs: no copy.  One worker per nginx, so the counters
# are this test's.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT held_session texts);
use Bayeux::Client;
use Time::HiRes qw(time);

my $redis = start_redis();

# an nginx of this Bayeux server, with its status location, and more
# directives of the endpoint if given
sub start_server {
    my ($more) = @_;
    $more //= '';
    return Test::Nginx::Bayeux::Server->new(
        workers => 1,
        http_config => $redis->engine_conf,
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 4s;
        $more
    }
    location = /status { bayeux_status; }
CONF
    )->start;
}

my $server = start_server();

# what an nginx ($server unless named) says of its Redis engine
sub counters {
    my ($of) = @_;
    return Bayeux::Client->new(port => ($of // $server)->port)
                         ->endpoint_status->{redis};
}

sub prometheus {
    my $c = Bayeux::Client->new(port => $server->port);
    return $c->request(method => 'GET', uri => '/status?format=prometheus',
                       new_connection => 1)->body;
}

# a long-polling session on nginx $on subscribed to $ch, its first
# connect answered, held between its connects; $who says what it does
sub held_between {
    my ($on, $ch, $who) = @_;
    my $c = Bayeux::Client->new(port => $on->port);
    ok($c->handshake->{successful}, "handshake of one that $who");
    ok($c->subscribe($ch)->{successful}, "... subscribes to $ch");
    ok($c->connect->{reply}{successful}, '... its first connect, answered');
    ok(until_true(sub { $redis->is_held($c->client_id, $ch) }),
       '... held between its connects');
    return $c;
}

my $r = counters();
is($r->{sessions_held}, 0, 'no session held at first');
is($r->{messages_queued}, 0, 'nothing queued at first');

# a websocket session whose connect is held: held
my ($ws, $wid) = held_session($server->port, '/st/a');
ok($wid, 'websocket handshake');
ok($redis->cmd('SISMEMBER', "bayeux:S:$wid", '/st/a'),
   'websocket subscribes');
ok(until_true(sub { $redis->is_held($wid, '/st/a') }),
   'the websocket session is held');
is(counters()->{sessions_held}, 1, 'sessions_held: 1');

# a long-polling session subscribed, with no connect yet: held by no
# worker (t/redis/156), so not counted
my $lp = Bayeux::Client->new(port => $server->port);
ok($lp->handshake->{successful}, 'long-polling handshake');
ok($lp->subscribe('/st/a')->{successful}, 'long-polling subscribes');
ok($redis->is_held($lp->client_id, '/st/a'), '... in H:, held by none');

my $pub = Bayeux::Client->new(port => $server->port);
ok($pub->handshake->{successful}, 'publisher handshake');
for my $k (1 .. 3) {
    ok($pub->publish('/st/a', { text => "m$k" })->{successful},
       "published m$k");
}

$r = counters();
is($r->{messages_queued}, 0, 'messages_queued: 0, no copy for either');
is($r->{sessions_held}, 1, 'sessions_held: still 1');
my $got = [];
while (@$got < 3) {
    my $m = $ws->recv_json(timeout => 5) or last;
    push @$got, map { $_->{data}{text} } grep { $_->{data} } @$m;
}
is_deeply($got, [ qw(m1 m2 m3) ], 'the held session was pushed all three');
is_deeply(texts($lp->connect),
          [ qw(m1 m2 m3) ], 'the other one gets them at its first connect');

# that first connect, answered at once, held the long-polling session
# between its connects
ok(until_true(sub { $redis->is_held($lp->client_id, '/st/a') }),
   'the long-polling session is held after its first connect');
is(counters()->{sessions_held}, 2, 'sessions_held: 2');
is(counters()->{messages_queued}, 0,
   'messages_queued: 0, its first connect gave what it missed from the '
   . 'logs');

my $text = prometheus();
like($text, qr/^# TYPE bayeux_redis_sessions_held gauge$/m,
     'Prometheus: the gauge');
like($text, qr/^bayeux_redis_sessions_held\{endpoint="\/cometd"\} 2$/m,
     'Prometheus: 2 held');
like($text, qr/^# TYPE bayeux_redis_messages_queued_total counter$/m,
     'Prometheus: the counter');
like($text,
     qr/^bayeux_redis_messages_queued_total\{endpoint="\/cometd"\} 0$/m,
     'Prometheus: 0 queued');

# its next connect parks; a publish then queues nothing
my $h = $lp->connect_start;
ok($pub->publish('/st/a', { text => 'm4' })->{successful}, 'published m4');
is_deeply(texts($lp->connect_finish($h, timeout => 5)),
          [ 'm4' ], 'the long-polling session gets m4');
is(counters()->{messages_queued}, 0, 'messages_queued: still 0');
is(counters()->{sessions_held}, 2, 'sessions_held: 2 between its connects');

# the websocket goes away: its session is held by none
$ws->reset;
ok(until_true(sub { counters()->{sessions_held} == 1 }),
   'sessions_held: 1 once the websocket went away');
ok(until_true(sub { $redis->held_by_none($wid) }),
   '... and Redis holds it by none');

# a publish queues no copy for it
ok($pub->publish('/st/a', { text => 'm5' })->{successful}, 'published m5');
is(counters()->{messages_queued}, 0, 'messages_queued: 0');

# a session not connected yet that unsubscribes is let go first: what it
# missed is copied to its queue, and counted
my $un = Bayeux::Client->new(port => $server->port);
ok($un->handshake->{successful}, 'handshake of one that unsubscribes');
ok($un->subscribe('/st/b')->{successful}, '... subscribes to /st/b');
ok($pub->publish('/st/b', { text => 'm6' })->{successful}, 'published m6');
is(counters()->{messages_queued}, 0, 'messages_queued: 0, it is held');
ok($un->unsubscribe('/st/b')->{successful}, '... unsubscribes');
is(counters()->{messages_queued}, 1, 'messages_queued: 1, m6 copied');
is_deeply(texts($un->connect),
          [ 'm6' ], '... and its first connect gets m6');

# a session held by this nginx between its connects, whose next connect
# goes to another nginx: that one's script gives what it missed from the
# logs, and copies nothing
my $other = start_server();
my $mv = held_between($server, '/st/c', 'moves');
is(counters()->{messages_queued}, 1, 'messages_queued: 1, nothing missed');
ok($pub->publish('/st/c', { text => 'm7' })->{successful}, 'published m7');
is(counters()->{messages_queued}, 1, 'messages_queued: 1, it is held');
my $moved = Bayeux::Client->new(port => $other->port,
                                cookie_jar => $mv->cookie_jar);
$moved->client_id($mv->client_id);
is_deeply(texts($moved->connect),
          [ 'm7' ], 'its next connect, to the other nginx, gets m7');
is(counters($other)->{messages_queued}, 0,
   'the other nginx made no copy of m7');
is(counters()->{messages_queued}, 1, 'nor did this one');
unlike($other->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the other error log');
$other->stop;

# a session held between its connects, given a message, whose client
# does not come back: the next message is kept by the worker, which lets
# the session go once the refresh period (a third of bayeux_interval +
# bayeux_max_interval) passed; the script ("up") holds it by none, from
# the last message given: the next connect gets the one kept from the
# log, without a copy
my $slow = start_server('bayeux_interval 0; bayeux_max_interval 3s; '
                        . 'bayeux_lazy_channel /st/lazy; '
                        . 'bayeux_max_lazy_timeout 500ms;');
my $away = held_between($slow, '/st/d', 'stays away');
$h = $away->connect_start;
ok($pub->publish('/st/d', { text => 'm8' })->{successful}, 'published m8');
is_deeply(texts($away->connect_finish($h, timeout => 5)),
          [ 'm8' ], '... its parked connect gets m8');
ok($pub->publish('/st/d', { text => 'm9' })->{successful},
   'published m9 while its client is away');
is(counters($slow)->{messages_queued}, 0,
   'messages_queued: 0, the worker keeps m9');
ok(until_true(sub { $redis->held_by_none($away->client_id) }, 5),
   'the worker lets the session go: held by none');
is(counters($slow)->{messages_queued}, 0, 'messages_queued: 0, no copy');
is_deeply(texts($away->connect),
          [ 'm9' ], 'its client comes back: its connect gets m9');
is(counters($slow)->{messages_queued}, 0, 'messages_queued: still 0');

# a lazy message for a parked connect of a session held: the worker does
# not give it, it lets the session go ("tb"), and the script copies the
# message into its queue, where it waits for bayeux_max_lazy_timeout
my $lazy = held_between($slow, '/st/lazy', 'gets a lazy message');
my $id = $lazy->client_id;
$h = $redis->park($slow, $lazy, '/st/lazy');
# (lazy as the publishing nginx's bayeux_lazy_channel says)
my $lpub = Bayeux::Client->new(port => $slow->port);
ok($lpub->handshake->{successful}, 'a publisher on that nginx');
my $t0 = time;
ok($lpub->publish('/st/lazy', { text => 'm10' })->{successful},
   'published m10, lazy');
ok(until_true(sub { !$redis->is_held($id, '/st/lazy') }),
   'the worker lets the session go');
is(counters($slow)->{messages_queued}, 1,
   'messages_queued: 1, the copy of m10 the script made as it let it go');
is_deeply(texts($lazy->connect_finish($h, timeout => 5)),
          [ 'm10' ], 'the parked connect gets m10');
cmp_ok(time - $t0, '>=', 0.4, '... after the lazy timeout');
unlike($slow->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the error log (bayeux_max_interval 3s)');
$slow->stop;

unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the error log');
$server->stop;

done_testing();
