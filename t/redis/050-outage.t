# Redis goes away and comes back: no crash, no hang.  During the outage
# every request is answered at once with "503::engine_unavailable" and
# retry advice, a parked connect is answered with an error; within 2 s of
# Redis being back the endpoint works again.  The error log has one line
# for the outage ([error]) and one for the recovery ([notice]: good news
# must not fire log-based alerts), not one per request; the first
# connection is logged at [info], and the connections are named (CLIENT
# SETNAME bayeux:<pid>:cmd and :sub).

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

sub server {
    my (%o) = @_;
    return Test::Nginx::Bayeux::Server->new(
        log_level => $ENV{TEST_LOG_LEVEL} // 'info',
        http_config => $redis->engine_conf(connect_timeout => '500ms',
                                           command_timeout => '500ms'),
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 10s;
    }
CONF
        %o,
    );
}

sub unavailable {
    my ($r) = @_;
    return $r && !$r->{successful}
        && ($r->{error} // '') eq '503::engine_unavailable'
        && ($r->{advice}{reconnect} // '') eq 'retry';
}

# the first successful handshake after $since, polled every 50 ms
sub wait_handshake {
    my ($c, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        my $r = $c->handshake;
        return time - $t0 if $r && $r->{successful};
        sleep 0.05;
    }
    return undef;
}

my @lines;

{
    my $server = server()->start;
    my $c = $server->client;
    ok($c->handshake->{successful}, 'handshake');
    ok($c->subscribe('/news')->{successful}, 'subscribe');

    my ($worker) = $server->worker_pids;
    my $list = $redis->cmd('CLIENT', 'LIST');
    my @names = sort $list =~ /\bname=(bayeux:\S*)/g;
    is_deeply(\@names, ["bayeux:$worker:cmd", "bayeux:$worker:sub"],
              'the connections are named after the worker and their role')
        or diag($list);
    like($server->error_log_text,
         qr/\[info\] .*bayeux: redis 127\.0\.0\.1:\d+ of location "\/cometd" connected$/m,
         'the first connection is logged at info');
    ok($c->connect->{reply}{successful}, 'first connect');
    my $held = $c->connect_start;
    sleep 0.2;

    $redis->stop;

    my $r = $c->connect_finish($held, timeout => 5);
    ok(!$r->{timed_out}, 'the parked connect is answered when Redis goes');
    cmp_ok($r->{elapsed}, '<', 1.5, '... at once');
    ok($r->{reply} && !$r->{reply}{successful}
       && $r->{reply}{error} eq '503::engine_unavailable'
       && $r->{reply}{advice}{reconnect} eq 'retry',
       '... with 503::engine_unavailable and retry advice')
        or diag explain $r->{reply};

    my $p = $server->client(cookie_jar => $c->cookie_jar);
    for my $i (1 .. 5) {
        my $t0 = time;
        ok(unavailable($p->handshake), "outage: handshake $i unavailable");
        $p->client_id($c->client_id);
        ok(unavailable($p->publish('/news', { i => $i })),
           "outage: publish $i unavailable");
        my $cr = $p->connect(timeout => 5);
        ok(unavailable($cr->{reply}), "outage: connect $i unavailable");
        cmp_ok(time - $t0, '<', 1.5, "outage: round $i answered at once");
        sleep 0.2;
    }

    $redis->start;
    my $took = wait_handshake($server->client, 5);
    ok(defined $took && $took < 2, 'recovered within 2 s of Redis coming back')
        or diag("took: " . ($took // 'more than 5 s'));

    # Redis came back empty: the old session is gone, a new one works
    my $old = $c->connect(timeout => 5);
    is($old->{reply}{error}, '402::session_unknown',
       'the old session is unknown: the client handshakes again');
    ok($c->handshake->{successful}, 'new handshake');
    ok($c->subscribe('/news')->{successful}, 'subscribe again');
    $c->connect;
    my $p2 = $server->client;
    $p2->handshake;
    $p2->publish('/news', 'after');
    is_deeply([ map { $_->{data} } @{ $c->wait_deliveries(count => 1) } ],
              ['after'], 'messages flow again');

    $server->stop;
    my $log = $server->error_log_text;
    my @down = $log =~ /(is unavailable .*)$/mg;
    my @up = $log =~ /(is available again)/g;
    is(scalar @down, 1, 'one outage line in the error log')
        or diag(join "\n", @down);
    is(scalar @up, 1, 'one recovery line in the error log');
    like($log, qr/\[error\] .*bayeux: redis \S+ of location "\/cometd" is unavailable/,
         'the outage at error');
    like($log, qr/\[notice\] .*bayeux: redis \S+ of location "\/cometd" is available again$/m,
         'the recovery at notice, not error');
    is(scalar(() = $log =~ /" connected$/mg), 1,
       'connected is said once, the recovery is not a first connection');
    unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
    push @lines, @down;
}

# Redis hangs (SIGSTOP): commands time out, the engine reconnects
{
    my $server = server()->start;
    my $c = $server->client;
    ok($c->handshake->{successful}, 'hang: handshake');
    $c->connect;
    my $held = $c->connect_start;
    sleep 0.2;

    $redis->pause;

    my $p = $server->client;
    my $t0 = time;
    my $h = $p->handshake;
    ok(unavailable($h), 'hang: a request gets 503::engine_unavailable');
    cmp_ok(time - $t0, '<', 1.5, '... within the command timeout');

    my $r = $c->connect_finish($held, timeout => 5);
    ok(!$r->{timed_out} && $r->{reply} && !$r->{reply}{successful},
       'hang: the parked connect is answered with an error');

    for my $i (1 .. 3) {
        $t0 = time;
        ok(unavailable($p->handshake), "hang: handshake $i unavailable");
        cmp_ok(time - $t0, '<', 1.5, "hang: handshake $i answered quickly");
    }

    $redis->resume;
    my $took = wait_handshake($server->client, 5);
    ok(defined $took && $took < 2, 'hang: recovered within 2 s of resuming');

    my $again = $c->connect(advice => { timeout => 0 }, timeout => 5);
    ok($again->{reply} && $again->{reply}{successful},
       'hang: the session survived (Redis kept its data)');

    $server->stop;
    my $log = $server->error_log_text;
    my @down = $log =~ /(is unavailable .*)$/mg;
    is(scalar @down, 1, 'hang: one outage line')
        or diag(join "\n", @down);
    like($down[0] // '', qr/timed out/, 'hang: it says the command timed out');
    is(scalar(() = $log =~ /is available again/g), 1, 'hang: one recovery line');
}

# nginx starts while Redis is down; Redis comes later
{
    $redis->stop;
    my $server = server()->start;
    my $c = $server->client;
    ok(unavailable($c->handshake), 'late Redis: unavailable at first');
    $redis->start;
    my $took = wait_handshake($c, 5);
    ok(defined $took && $took < 2, 'late Redis: works within 2 s');
    $server->stop;
    my $log = $server->error_log_text;
    is(scalar(() = $log =~ /is unavailable/g), 1, 'late Redis: one outage line');
    is(scalar(() = $log =~ /is available again/g), 1,
       'late Redis: one recovery line');
}

note("outage lines:\n" . join("\n", @lines));

done_testing();
