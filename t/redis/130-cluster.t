# Redis Cluster: bayeux_redis_url redis+cluster://seed,seed,...  Three
# primaries and three replicas on loopback ports (Test::Bayeux::RedisCluster).
# nginx -t takes the seeds and refuses a database (a Cluster has only 0).
# Two nginx on the cluster are one Bayeux server: a session handshaken at
# one is served at the other, with the replies the memory engine gives.
# Every key of an endpoint is in the one slot of "{<prefix>}", on the
# primary that serves it, and its worker notifications go by sharded
# pub/sub in that slot; another prefix may live on another primary.  The
# slot is then migrated to another primary under traffic (sessions and
# subscriptions survive, the publishes made meanwhile wait for it and
# succeed, nothing acknowledged is lost), and its primary
# killed (SIGKILL) under a stream of publishes: the replica takes over,
# requests get 503::engine_unavailable meanwhile, and a client with the
# ack extension gets every message published after the failover
# completed, once and in order.  What was acknowledged in the last instant
# before may be lost (replication is asynchronous): counted and reported,
# not asserted, as t/redis/120-sentinel.t does.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use JSON::PP ();
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::AckStream;
use Test::Bayeux::RedisCluster;
use Time::HiRes qw(time sleep);

plan skip_all => 'SIGKILL of Redis and failover timing: not under valgrind'
    if use_valgrind();

my $cluster = start_redis_cluster(primaries => 3, replicas => 1);
my $slot = $cluster->keyslot('{bayeux:}');

#
# nginx -t
#

# nginx -t on a configuration with these http-level directives: (exit
# code, what it printed)
sub nginx_t {
    my ($http_config) = @_;
    my $s = Test::Nginx::Bayeux::Server->new(
        http_config => $http_config,
        config => "location /cometd { bayeux; }\n");
    $s->prepare;
    my $root = $s->root;
    local %ENV = %ENV;
    if (Test::Nginx::Bayeux::Server::sanitized()) {
        my %o = Test::Nginx::Bayeux::Server::sanitizer_options();
        $ENV{$_} //= $o{$_} for keys %o;
    }
    my $bin = $s->binary;
    my $cmd = "'$bin' -t -p '$root/' -c conf/nginx.conf "
            . "-e '$root/logs/error.log' 2>&1";
    my $out = `$cmd`;
    my $rc = $? >> 8;
    $out .= do { local (@ARGV, $/) = ("$root/logs/error.log"); <> // '' }
        if -s "$root/logs/error.log";
    return ($rc, $out);
}

my $url = $cluster->url(count => 3);
my ($rc, $out) = nginx_t("bayeux_engine redis;\nbayeux_redis_url $url;\n");
is($rc, 0, "nginx -t accepts $url") or diag($out);
($rc, $out) = nginx_t("bayeux_engine redis;\n"
                      . "bayeux_redis_url redis+cluster://:pw\@127.0.0.1,"
                      . "localhost:7001;\n");
is($rc, 0, 'nginx -t accepts a password and a seed without a port')
    or diag($out);
($rc, $out) = nginx_t("bayeux_engine redis;\nbayeux_redis_url $url/0;\n");
isnt($rc, 0, 'nginx -t refuses a database');
like($out, qr/bayeux_redis_url/, '... naming the directive');
like($out, qr/redis\+cluster/i, '... and redis+cluster');
like($out, qr/database/i, '... and the database');

#
# two nginx on the cluster
#

# another prefix whose slot is on another primary than "{bayeux:}"
my $home = $cluster->slot_node($slot);
ok($home, "slot $slot of {bayeux:} is served by port " . $home->port);
my ($other_prefix, $other_home);
for my $i (1 .. 100) {
    my $n = $cluster->slot_node($cluster->keyslot("{app$i:}")) or next;
    next if $n == $home;
    ($other_prefix, $other_home) = ("app$i:", $n);
    last;
}
ok($other_prefix, "prefix $other_prefix is served by port "
                  . $other_home->port);

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        log_level => 'info',
        http_config => $cluster->engine_conf(connect_timeout => '1s',
                                             command_timeout => '2s'),
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_interval 30s;
        bayeux_max_queue 10000;
    }
    location /other {
        bayeux;
        bayeux_redis_prefix "$other_prefix";
        bayeux_timeout 5s;
    }
CONF
    )->start
} 1 .. 2;
my ($A, $B) = @servers;

# the same session on the other server
sub same_session {
    my ($server, $c, %o) = @_;
    my $d = $server->client(cookie_jar => $c->cookie_jar, %o);
    $d->client_id($c->client_id);
    return $d;
}

my $advice = { interval => 0, maxInterval => 30000, reconnect => 'retry',
               timeout => 5000 };

my $ca = $A->client;
my $hs = $ca->handshake;
my $id = $ca->client_id // '';
like($id, qr/^[0-9a-f]{40}$/, 'handshake on A: a clientId');
is_deeply($hs, { channel => '/meta/handshake', clientId => $id, id => '1',
                 version => '1.0', minimumVersion => '1.0',
                 successful => JSON::PP::true,
                 supportedConnectionTypes => [ 'websocket', 'long-polling',
                                               'callback-polling' ],
                 advice => $advice },
          'handshake on A: the reply');

my $cb = same_session($B, $ca);
is_deeply(scalar $cb->subscribe('/feed', { id => 's1' }),
          { channel => '/meta/subscribe', clientId => $id, id => 's1',
            subscription => '/feed', successful => JSON::PP::true },
          'subscribe on B: the reply');

is_deeply($ca->connect(id => 'c1')->{reply},
          { channel => '/meta/connect', clientId => $id, id => 'c1',
            successful => JSON::PP::true, advice => $advice },
          'first connect on A: the reply, at once');

my $h = $cb->connect_start(id => 'c2');
sleep 0.3;
ok(!$h->ready, 'connect on B: parked');
my $pub = $A->client;
ok($pub->handshake->{successful}, 'publisher on A');
is_deeply(scalar $pub->publish('/feed', { n => 1 }, id => 'm1'),
          { channel => '/feed', id => 'm1', successful => JSON::PP::true },
          'publish on A: the reply');
my $r = $cb->connect_finish($h, timeout => 10);
is_deeply($r->{messages},
          [ { channel => '/feed', data => { n => 1 }, id => 'm1' },
            { channel => '/meta/connect', clientId => $id, id => 'c2',
              successful => JSON::PP::true, advice => $advice } ],
          'the connect parked on B: the message published on A');
cmp_ok($r->{elapsed}, '<', 3, '... released by the publish, not its timeout');

# the other prefix: a server of its own on the same cluster
my $o1 = $A->client(path => '/other');
ok($o1->handshake->{successful}, "handshake on A's /other");
ok(same_session($B, $o1, path => '/other')->subscribe('/x')->{successful},
   "subscribe on B's /other");
ok($o1->connect->{reply}{successful}, "first connect on A's /other");
ok($pub->publish('/x', 'not for /other')->{successful},
   'a publish on /cometd');
my $o2 = $B->client(path => '/other');
ok($o2->handshake->{successful}, "publisher on B's /other");
ok($o2->publish('/x', 'for /other')->{successful}, 'a publish on /other');
is_deeply([ map { $_->{data} }
            @{ $o1->wait_deliveries(count => 1, timeout => 10) } ],
          [ 'for /other' ], "/other gets its own message only");

# where the keys are
sub check_keys {
    my ($what, $prefix, $node) = @_;
    my %k = $cluster->scan('*' . $prefix . '*', primaries => 1);
    my $pslot = $cluster->keyslot("{$prefix}");
    my @all = map { @$_ } values %k;
    ok(scalar @all, "$what: keys were written");
    is_deeply([ grep { index($_, "{$prefix}") != 0 } @all ], [],
              "$what: every key is named {$prefix}...");
    is_deeply([ grep { $cluster->keyslot($_) != $pslot } @all ], [],
              "$what: every key is in slot $pslot");
    is_deeply([ map { @{ $k{$_} } ? $_ : () } sort keys %k ], [ $node->port ],
              "$what: on the primary that serves the slot (port "
              . $node->port . ')');
    my @no_ttl = grep { ($cluster->cmd_key($_, 'PTTL', $_) // 0) == -1 }
                 @all;
    is_deeply(\@no_ttl, [], "$what: every key has a TTL");
}

# sharded pub/sub: the workers' channels are in the slot, on its primary;
# no plain pub/sub channel of the prefix (it would reach every node).  The
# node may serve the other endpoint's slot too (a migration or failover
# can bring both to one primary): its channels are not this prefix's.
sub check_notifications {
    my ($what, $prefix, $node) = @_;
    my $pslot = $cluster->keyslot("{$prefix}");
    my $chans = [];
    my $deadline = time + 10;
    while (time < $deadline) {
        my $all = eval { $node->cmd('PUBSUB', 'SHARDCHANNELS') } // [];
        $chans = [ grep { index($_, "{$prefix}") == 0 } @$all ];
        last if @$chans;
        sleep 0.2;
    }
    ok(scalar @$chans, "$what: sharded channels of the prefix on port "
                       . $node->port);
    is_deeply([ grep { $cluster->keyslot($_) != $pslot } @$chans ], [],
              "$what: every sharded channel is in slot $pslot");
    my @plain;
    for my $n ($cluster->live_nodes) {
        my $c = eval { $n->cmd('PUBSUB', 'CHANNELS', "*$prefix*") };
        push @plain, @{ $c // [] };
    }
    is_deeply(\@plain, [], "$what: no plain pub/sub channel of the prefix");
}

check_keys('/cometd', 'bayeux:', $home);
check_notifications('/cometd', 'bayeux:', $home);
check_keys('/other', $other_prefix, $other_home);
isnt($other_home->port, $home->port,
     'the two endpoints are on different primaries');

#
# traffic: a consumer with the ack extension and a connect always under
# way on A, a publisher on B, a consumer without acks
#

my $acker = $A->client;
ok($acker->handshake(ext => { ack => JSON::PP::true })->{successful},
   'handshake with the ack extension');
ok($acker->subscribe('/feed')->{successful}, 'subscribe');

my $plain = $cb;
$plain->deliveries;
my $feeder = $B->client;
ok($feeder->handshake->{successful}, 'publisher on B');

my $stream = Test::Bayeux::AckStream->new(publisher => $feeder,
                                          consumer => $acker);

# the consumer without acks gets every acknowledged publish once, in order
# (%o: concurrent, as Test::Bayeux::AckStream->check takes it)
sub check_plain {
    my ($name, $acked, %o) = @_;
    my %any = map { $_ => 1 } @{ $o{concurrent} || [] };
    my @want = map { $_->[0] } @$acked;
    my %want = map { $_ => 1 } @want;
    my @d = map { $_->{data} } @{ $plain->deliveries('/feed') };
    my $deadline = time + 20;
    while (time < $deadline && grep({ $want{$_} } @d) < @want) {
        my $r = $plain->connect(timeout => 7);
        if ($r->{reply} && ($r->{reply}{error} // '') =~ /^402/) {
            fail("$name: the session without acks was lost");
            return;
        }
        push @d, map { $_->{data} } @{ $plain->deliveries('/feed') };
        sleep 0.2 unless $r->{reply} && $r->{reply}{successful};
    }
    my @got = grep { $want{$_} } @d;
    is_deeply([ sort { $a <=> $b } @got ], [ sort { $a <=> $b } @want ],
              "$name: the session without acks gets every acknowledged "
              . 'message once (' . scalar(@want) . ')');
    is_deeply([ grep { !$any{$_} } @got ], [ grep { !$any{$_} } @want ],
              "$name: ... in order");
}

{
    my @acked;
    $stream->turn(\@acked) for 1 .. 10;
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    $stream->check('before', 1, \@acked, 'nothing acknowledged is lost');
    check_plain('before', \@acked);
}

#
# the slot migrated to another primary, under traffic
#

{
    $stream->forget;
    my @acked;
    my $first = $stream->seq + 1;
    my ($to) = grep { $_ != $home } $cluster->primaries;
    my @started;
    my $moved = $cluster->migrate_slot($slot, $to, batch => 2, between => sub {
        push @started, $stream->turn_start;
    });
    ok($moved, "migration: $moved keys moved to port " . $to->port
               . ' in batches, a publish started after each');
    is($cluster->slot_node($slot), $to, "migration: port " . $to->port
                                         . " serves slot $slot");
    is_deeply([ grep { $_ ne 'ok' } $stream->turn_finish(\@acked, @started) ],
              [], 'migration: the ' . scalar(@started) . ' publishes made '
                  . 'during it waited for it, and succeeded');
    my $t0 = time;
    my $n = 0;
    while ($n < 10 && time < $t0 + 30) {
        $n++ if $stream->turn(\@acked) eq 'ok';
        sleep 0.05;
    }
    is($n, 10, 'migration: publishes succeed after');
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    my @concurrent = map { $_->[0] } @started;
    $stream->check('migration', $first, \@acked,
                   'nothing acknowledged is lost',
                   concurrent => \@concurrent);
    check_plain('migration', \@acked, concurrent => \@concurrent);
    check_keys('after the migration', 'bayeux:', $to);
    check_notifications('after the migration', 'bayeux:', $to);

    # a connect parked after the migration is released by a publish
    my $h = $plain->connect_start;
    sleep 0.3;
    $stream->turn([]);
    my $r = $plain->connect_finish($h, timeout => 10);
    ok(grep({ $_->{data} == $stream->seq } @{ $r->{deliveries} }),
       'migration: a parked connect gets the next publish');
    cmp_ok($r->{elapsed}, '<', 3, '... released by it, not its timeout');
    $home = $to;
}

#
# failover: the primary of the slot killed under a stream of publishes
#

{
    $cluster->wait_replicas_in_sync(20);
    my ($replica) = $cluster->replicas_of($home);
    ok($replica, 'failover: port ' . $home->port . ' has a replica, port '
                 . ($replica ? $replica->port : '?'));
    my @acked;
    $stream->turn(\@acked) for 1 .. 10;
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    $stream->forget;
    @acked = ();
    my $first = $stream->seq + 1;

    $cluster->kill_node($home);

    # under traffic until every live node names the replica for the slot
    # and it is a primary: the failover is complete
    my $done = $stream->until_done(\@acked, sub {
        my $n = $cluster->slot_node($slot);
        $n && $n == $replica
    }, within => 40, pause => 0.05);
    ok($done, 'failover: port ' . $replica->port . " serves slot $slot");
    ok(grep({ $_ eq '503::engine_unavailable' } $stream->statuses),
       'failover: 503::engine_unavailable while the slot had no primary');
    ok($stream->retries, '... with retry advice');

    # after: every publish acknowledged once the failover is complete
    my @after = grep { $_->[1] >= ($done // time) } @acked;
    $stream->turn(\@after) for 1 .. 10;
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    my %seen = $stream->check('failover', $first, \@after,
                              'nothing acknowledged is lost',
                              after_failover => 1);
    my @before = grep { $_->[1] < ($done // time) } @acked;
    my $lost_before = grep { !$seen{$_->[0]} } @before;
    diag("failover: $lost_before of " . scalar(@before) . ' messages '
         . 'acknowledged during the failover were lost (asynchronous '
         . 'replication)');

    my $r = $plain->connect(timeout => 7);
    ok($r->{reply} && $r->{reply}{successful},
       'failover: the session without acks survived');
    $plain->deliveries;
    check_keys('after the failover', 'bayeux:', $replica);
    check_notifications('after the failover', 'bayeux:', $replica);
}

$_->stop for @servers;
for my $s (@servers) {
    unlike($s->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert in the error log of ' . $s->port);
}

done_testing();
