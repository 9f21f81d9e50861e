# Redis Cluster without sharded pub/sub (before Redis 7.0, which added
# SSUBSCRIBE and SPUBLISH): the engine asks each primary it links to
# whether it has SSUBSCRIBE, and where it has not, takes its notifications
# by plain pub/sub (SUBSCRIBE; the script PUBLISHes, which the cluster
# carries to every node).  The nodes here are Redis 7 with the sharded
# commands renamed away, which is what a Redis 6.2 node looks like to
# the engine.  Two nginx on the cluster: a session handshaken at one is
# served at the other, held connects and websockets are released by
# publishes at the other at once, the log says which pub/sub is used,
# and the node has the workers' channels as plain channels, none sharded;
# B follows ASK during a migration, and A gets what B publishes there.
# Then a few protocol files again on this cluster.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Rerun;
use Test::Bayeux::Redis qw(held_session hold missing_deliveries);
use Test::Bayeux::RedisCluster;
use Time::HiRes qw(time sleep);

my $cluster = start_redis_cluster(
    primaries => 3, replicas => 0,
    args => [ map { ('--rename-command', $_, lc($_) . '-renamed') }
              qw(SSUBSCRIBE SUNSUBSCRIBE SPUBLISH) ]);
my $home = $cluster->slot_node($cluster->keyslot('{bayeux:}'));

is_deeply($home->cmd('COMMAND', 'INFO', 'SSUBSCRIBE'), [ undef ],
          'the nodes have no SSUBSCRIBE, as before Redis 7.0');

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        log_level => 'info',
        http_config => $cluster->engine_conf(connect_timeout => '1s',
                                             command_timeout => '2s'),
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 3s;
        bayeux_max_interval 30s;
    }
CONF
    )->start
} 1 .. 2;
my ($A, $B) = @servers;

my $pub = $B->client;
ok(($pub->handshake // {})->{successful}, 'a publisher on B');

# a session handshaken at A, served at B
{
    my $c = $A->client;
    ok(($c->handshake // {})->{successful}, 'handshake at A');
    ok(($c->subscribe('/feed') // {})->{successful}, 'subscribe at A');
    my $at_b = $B->client(cookie_jar => $c->cookie_jar);
    $at_b->client_id($c->client_id);
    my $r = $at_b->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, '... its connect at B');
    $r = $at_b->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, '... and its next');
}

# a long-polling connect held at A, released by a publish at B
{
    my $c = $A->client;
    ok(($c->handshake // {})->{successful}, 'a subscriber at A');
    ok(($c->subscribe('/feed') // {})->{successful}, '... subscribed');
    my $r = $c->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, '... its first connect');
    for my $n (1 .. 3) {
        my $h = $c->connect_start;
        sleep 0.3;
        ok(($pub->publish('/feed', "p$n") // {})->{successful},
           "publish p$n at B");
        $r = $c->connect_finish($h, timeout => 5);
        is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ "p$n" ],
                  "... releases the connect held at A with it");
        cmp_ok($r->{elapsed}, '<', 2, '... at once, not at its timeout');
    }
}

# a websocket subscriber at A gets what is published at B
{
    my ($ws, $id) = held_session($A->port, '/feed');
    ok(($pub->publish('/feed', 'w1') // {})->{successful}, 'publish w1 at B');
    ok(($pub->publish('/feed', 'w2') // {})->{successful}, 'publish w2 at B');
    my @got;
    my $deadline = time + 5;
    while (@got < 2 && time < $deadline) {
        my $m = $ws->recv_json(timeout => $deadline - time) or last;
        push @got, map { $_->{data} }
                   grep { ($_->{channel} // '') eq '/feed' } @$m;
        # a connect answered: the next one, as a client sends it
        hold($ws, $id)
            if grep { ($_->{channel} // '') eq '/meta/connect' } @$m;
    }
    is_deeply(\@got, [ 'w1', 'w2' ],
              'a websocket subscriber at A gets both, in order');
}

my @plain = @{ $home->cmd('PUBSUB', 'CHANNELS', '{bayeux:}*') };
my @sharded = @{ $home->cmd('PUBSUB', 'SHARDCHANNELS') };
my @pids = map { $_->serving_pids } @servers;
is_deeply([ sort map { /^\{bayeux:\}w:[^:]*:(\d+):/ ? $1 : () } @plain ],
          [ sort @pids ],
          'every worker listens on a plain channel of the prefix')
    or diag("@plain");
ok(grep({ $_ eq '{bayeux:}N' } @plain), '... and on the stream');
is_deeply(\@sharded, [], '... and on no sharded channel');

for my $s ($A, $B) {
    like($s->error_log_text, qr/redis 127\.0\.0\.1:\d+ \(cluster slot \d+\) of location "\/cometd" has no sharded pub\/sub \(SSUBSCRIBE, Redis 7\.0\): notifications go by PUBLISH, to every node of the cluster/,
         'the log says notifications go by plain pub/sub');
}

# every key of the slot moved, the slot not yet given to the new node:
# B's publishes follow ASK there (without sharded pub/sub, the script's
# key is "{bayeux:}~!"), and what they PUBLISH there reaches A's workers,
# still on the old node, at once
{
    my $slot = $cluster->keyslot('{bayeux:}');
    my ($to) = grep { $_ != $home } $cluster->primaries;
    my $c = $A->client;
    ok(($c->handshake // {})->{successful}, 'a subscriber at A');
    ok(($c->subscribe('/feed') // {})->{successful}, '... subscribed');
    my $r = $c->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, '... its first connect');
    my $offset = $B->error_log_offset;
    my (@published, $newcomer);
    $cluster->migrate_slot($slot, $to, before_node => sub {
        my $h = $c->connect_start;
        sleep 0.3;
        for my $n (1, 2) {
            push @published,
                 ($pub->publish('/feed', "m$n") // {})->{successful}
                 ? 'ok' : 'failed';
        }
        $r = $c->connect_finish($h, timeout => 5);
        $newcomer = $B->client;
        push @published,
             ($newcomer->handshake // {})->{successful} ? 'ok' : 'failed';
    });
    is_deeply(\@published, [ 'ok', 'ok', 'ok' ],
              'while the slot is not yet given, two publishes and a '
              . 'handshake at B succeed');
    like(substr($B->error_log_text, $offset),
         qr/the slot's keys have all moved to [\d.]+:\d+ before it serves the slot: requests follow ASK there/,
         '... which followed ASK');
    # with m1, or (its worker, on giving it, follows ASK too and moves
    # its link) as in a failover
    ok($r->{reply}, 'the first releases the connect held at A');
    cmp_ok($r->{elapsed}, '<', 2, '... at once, not at its timeout');
    is_deeply(missing_deliveries([ $c ], '/feed', 'm1', 'm2'), [],
              'the subscriber at A gets both, once, in order');
}

$_->stop for @servers;
$_->check_crashes for @servers;

# the protocol files that cover notifications, on this cluster
$ENV{TEST_BAYEUX_REDIS_URL} = $cluster->url;
rerun($_, 'on a Redis Cluster without sharded pub/sub')
    for split(' ', $ENV{TEST_BAYEUX_FILES}
                   // 't/020-connect.t t/030-publish.t t/060-websocket.t');

done_testing;
