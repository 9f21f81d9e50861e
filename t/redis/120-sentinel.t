# Redis Sentinel: bayeux_redis_url redis+sentinel://s1,s2,s3/mymaster.  A
# primary, its replica and three sentinels on loopback ports; the engine
# asks the sentinels for the primary, and follows two failovers under
# traffic: one the sentinels are asked for (SENTINEL FAILOVER), one after
# the primary is killed (SIGKILL).  Each time the endpoint recovers by
# itself (503 meanwhile), the sessions survive (the replica had them),
# and a client with the ack extension gets every message published after
# the failover completed, once and in order.  What was acknowledged in the
# last instant before may be lost, and what was given then given again
# (replication is asynchronous): counted and reported, not asserted.  The
# data nodes have a password, the sentinels none: the URL's password
# serves both.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use JSON::PP ();
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::AckStream;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

plan skip_all => 'SIGKILL of Redis and failover timing: not under valgrind'
    if use_valgrind();

# the data nodes have a password, the sentinels none: the URL's password
# goes to both, and the sentinels' refusal of it is no failure
my @auth = ('--requirepass', 'pw', '--masterauth', 'pw');
my $primary = start_redis(args => [ @auth ], password => 'pw');
my $replica = start_redis(args => [ @auth, '--replicaof', '127.0.0.1',
                                    $primary->port ],
                          password => 'pw');

wait_for('the replica is in sync', 10, sub {
    $replica->cmd('INFO', 'replication') =~ /master_link_status:up/
});

my $sconf = 'sentinel monitor mymaster 127.0.0.1 ' . $primary->port . " 2\n"
          . "sentinel down-after-milliseconds mymaster 500\n"
          . "sentinel failover-timeout mymaster 2000\n"
          . "sentinel auth-pass mymaster pw\n";

my @sentinels = map { start_redis(sentinel => $sconf) } 1 .. 3;

# a failover needs the sentinels to know each other and the replica
wait_for('the sentinels know each other and the replica', 15, sub {
    for my $s (@sentinels) {
        my %m = @{ $s->cmd('SENTINEL', 'master', 'mymaster') };
        return 0 unless $m{'num-other-sentinels'} == 2
                        && $m{'num-slaves'} == 1;
    }
    return 1;
});

my $url = 'redis+sentinel://:pw@'
        . join(',', map { '127.0.0.1:' . $_->port } @sentinels)
        . '/mymaster';

my $nginx = Test::Nginx::Bayeux::Server->new(
    workers => 2,
    log_level => 'info',
    http_config => "bayeux_engine redis;\nbayeux_redis_url $url;\n"
                   . "bayeux_redis_connect_timeout 1s;\n"
                   . "bayeux_redis_command_timeout 2s;\n",
    config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_max_interval 30s;
        bayeux_max_queue 10000;
    }
CONF
)->start;

# the consumer: the ack extension, a connect always under way
my $acker = $nginx->client;
ok($acker->handshake(ext => { ack => JSON::PP::true })->{successful},
   'handshake with the ack extension');
ok($acker->subscribe('/feed')->{successful}, 'subscribe');

# the same without acks: its session must survive too
my $plain = $nginx->client;
ok($plain->handshake->{successful}, 'handshake without acks');
ok($plain->subscribe('/feed')->{successful}, 'subscribe');

my $pub = $nginx->client;
ok($pub->handshake->{successful}, 'publisher');

my $stream = Test::Bayeux::AckStream->new(publisher => $pub,
                                          consumer => $acker);

sub master_port {
    my $r = eval {
        $sentinels[0]->cmd('SENTINEL', 'get-master-addr-by-name', 'mymaster')
    };
    return $r ? $r->[1] : 0;
}

sub failover_case {
    my ($name, $old, $new, $start) = @_;

    # traffic before
    my @acked;
    $stream->turn(\@acked) for 1 .. 10;
    $stream->drain;
    my %got = map { $_ => 1 } $stream->got;
    ok(!grep({ !$got{$_->[0]} } @acked), "$name: traffic flows before");

    $stream->forget;
    @acked = ();
    my $first = $stream->seq + 1;
    $start->();

    # under traffic until the new primary serves, and the old one (if it
    # lives) is its replica: the failover is complete
    my $done = $stream->until_done(\@acked, sub {
        master_port() == $new->port
            && eval { $new->cmd('ROLE')->[0] eq 'master' }
            && (!$old->running
                || eval { $old->cmd('ROLE')->[0] eq 'slave' })
    }, within => 20, pause => 0.02);
    ok($done, "$name: the sentinels switched to port " . $new->port);
    ok(grep({ $_ eq '503::engine_unavailable' } $stream->statuses),
       "$name: 503::engine_unavailable while the engine had no primary");

    # after: every publish acknowledged once the failover is complete
    my @after = grep { $_->[1] >= $done } @acked;
    $stream->turn(\@after) for 1 .. 10;
    $stream->drain;

    my %seen = $stream->check($name, $first, \@after,
        'nothing published after the failover is lost',
        only_from_first => 1, after_failover => 1);
    my @before = grep { $_->[1] < $done } @acked;
    my $lost_before = grep { !$seen{$_->[0]} } @before;
    diag("$name: $lost_before of " . scalar(@before) . ' messages '
         . 'acknowledged during the failover were lost (asynchronous '
         . 'replication)');

    # the session without acks is still known
    my $r = $plain->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful},
       "$name: the session without acks survived");
    $stream->forget;
}

ok(master_port() == $primary->port, 'the sentinels name the primary');

failover_case('SENTINEL FAILOVER', $primary, $replica, sub {
    $sentinels[0]->cmd('SENTINEL', 'failover', 'mymaster');
});

like($nginx->error_log_text, qr/redis sentinel: master "mymaster" switched/,
     'the switch is logged');
like($nginx->error_log_text,
     qr/redis 127\.0\.0\.1:${\ $replica->port} \(master "mymaster"\) of location "\/cometd" is available again/,
     'and the new primary, available');

# the old primary follows the new one before it can take over again
wait_for('the old primary is a replica in sync', 10, sub {
    $primary->cmd('INFO', 'replication') =~ /master_link_status:up/
});

failover_case('SIGKILL', $replica, $primary, sub { $replica->kill });

# a reload: the old workers leave (their sentinel watches with them), the
# new ones ask the sentinels, and the sessions go on
my $t0 = time;
$nginx->reload;
cmp_ok(time - $t0, '<', 5, 'reload: the old workers exit promptly');
my @acked;
$stream->turn(\@acked) for 1 .. 5;
$stream->drain;
my %seen = map { $_ => 1 } $stream->got;
ok(@acked == 5 && !grep({ !$seen{$_->[0]} } @acked),
   'reload: the consumer gets what is published next');

$nginx->stop;
unlike($nginx->error_log_text, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing();

sub wait_for {
    my ($what, $secs, $cond) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if eval { $cond->() };
        sleep 0.1;
    }
    BAIL_OUT("timed out waiting: $what");
}
