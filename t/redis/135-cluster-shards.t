# bayeux_redis_shards on a Redis Cluster: three primaries, three replicas,
# two nginx with "bayeux_redis_shards 3".  The shards' hash tags fall in
# the three thirds of the slots, so each primary serves one shard: its
# keys, and the sharded channels of its workers.  A publish reaches the
# sessions of every shard once, in order.  The slot of one shard is
# migrated to another primary under publishes, which wait for that shard
# and reach every session once.  The primary of one shard is
# killed (SIGKILL) under a stream of publishes: sessions of the other
# shards go on being served meanwhile; publishes, which reach every
# shard, get 503::engine_unavailable until the replica took over; and a
# client with the ack extension in the killed shard gets every message
# published after the failover completed, once and in order.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use JSON::PP ();
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::AckStream;
use Test::Bayeux::RedisCluster;
use Test::Bayeux::Redis qw(missing_deliveries);
use Time::HiRes qw(time sleep);

plan skip_all => 'SIGKILL of Redis and failover timing: not under valgrind'
    if use_valgrind();

my $cluster = start_redis_cluster(primaries => 3, replicas => 1);

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        http_config => $cluster->engine_conf(connect_timeout => '1s',
                                             command_timeout => '2s',
                                             shards => 3),
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_interval 30s;
        bayeux_max_queue 10000;
    }
CONF
    )->start
} 1 .. 2;

# the shard of a session: the hash tag of its keys, and the primary
# that has them
sub shard_of {
    my ($id) = @_;
    my %k = $cluster->scan("*s:$id", primaries => 1);
    my @where = map { my $p = $_; map { [ $p, $_ ] } @{ $k{$p} } } keys %k;
    return undef unless @where == 1;
    my ($tag) = $where[0][1] =~ /^(\{bayeux:\d+:\})s:/ or return undef;
    return { tag => $tag, port => $where[0][0] };
}

my (@clients, %by_tag);
for my $i (0 .. 29) {
    my $c = $servers[$i % 2]->client;
    ok($c->handshake->{successful}, "session $i: handshake") or BAIL_OUT;
    ok($c->subscribe('/room')->{successful}, "session $i: subscribe");
    my $s = shard_of($c->client_id);
    ok($s, "session $i: in one shard, on one primary");
    push @{ $by_tag{ $s->{tag} }{ $s->{port} } }, $c if $s;
    push @clients, $c;
}

my @tags = sort keys %by_tag;
is(scalar @tags, 3, 'the sessions are in 3 shards');
is_deeply([ map { scalar keys %{ $by_tag{$_} } } @tags ], [ 1, 1, 1 ],
          'each shard on one primary');
my %port_of = map { $_ => (keys %{ $by_tag{$_} })[0] } @tags;
is(scalar(keys %{ { reverse %port_of } }), 3,
   'the 3 shards on 3 different primaries');

# each primary: the sharded channels of its shard only: one per worker
# and the held sessions' stream
for my $tag (@tags) {
    my $node = $cluster->node_by_port($port_of{$tag});
    my $chans = eval { $node->cmd('PUBSUB', 'SHARDCHANNELS') } // [];
    my @mine = grep { index($_, "${tag}w:") == 0 } @$chans;
    is(scalar @mine, 4, "port $port_of{$tag}: a channel per worker of $tag");
    ok((grep { $_ eq "${tag}N" } @$chans), "port $port_of{$tag}: the stream");
    is_deeply([ grep { index($_, $tag) != 0 } @$chans ], [],
              "port $port_of{$tag}: no other shard's channel");
}

$_->connect(advice => { timeout => 0 }) for @clients;
for my $n (1 .. 5) {
    ok($clients[0]->publish('/room', { n => $n })->{successful},
       "publish $n");
}
is_deeply(missing_deliveries(\@clients, '/room', 1 .. 5), [],
          'every session got 1..5 once, in order');

#
# the primary of one shard killed: an acknowledging consumer in it, a
# publisher and a bystander in the others
#

my ($doomed, $pub_tag, $calm_tag) = @tags;
my $acker;
for (1 .. 60) {
    my $c = $servers[0]->client;
    $c->handshake(ext => { ack => JSON::PP::true });
    my $s = shard_of($c->client_id) or next;
    if ($s->{tag} eq $doomed) { $acker = $c; last }
}
ok($acker, "a consumer with the ack extension in $doomed");
ok($acker->subscribe('/feed')->{successful}, 'it subscribes to /feed');
my $feeder = (values %{ $by_tag{$pub_tag} })[0][0];
my $bystander = (values %{ $by_tag{$calm_tag} })[0][0];

my $stream = Test::Bayeux::AckStream->new(publisher => $feeder,
                                          consumer => $acker);
{
    my @acked;
    $stream->turn(\@acked) for 1 .. 10;
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    $stream->check('before', 1, \@acked, 'nothing acknowledged is lost');
}

#
# the slot of the bystander's shard migrated to the publisher's primary
# under publishes: they wait for that shard, and reach every shard
#

{
    ok($bystander->subscribe('/feed')->{successful},
       "a session of $calm_tag subscribes to /feed");
    $stream->forget;
    my $first = $stream->seq + 1;
    my $to = $cluster->node_by_port($port_of{$pub_tag});
    my (@started, @acked);
    my $moved = $cluster->migrate_slot($cluster->keyslot($calm_tag), $to,
        batch => 2, between => sub { push @started, $stream->turn_start });
    ok($moved, "$calm_tag migrated: $moved keys moved to port "
               . $to->port . ', a publish started after each batch');
    is_deeply([ grep { $_ ne 'ok' } $stream->turn_finish(\@acked, @started) ],
              [], 'the ' . scalar(@started) . ' publishes made meanwhile '
                  . 'waited for that shard, and succeeded');
    my @want = map { $_->[0] } @acked;
    my $d = $bystander->wait_deliveries(count => scalar @want,
                                        channel => '/feed');
    is_deeply([ sort { $a <=> $b } map { $_->{data} } @$d ], \@want,
              "the session of $calm_tag gets each once");
    $stream->drain(within => 20, wait => 6, pause => 0.2);
    $stream->check('migration', $first, \@acked,
                   "the ack consumer in $doomed gets each",
                   concurrent => \@want);
    ok($bystander->unsubscribe('/feed')->{successful},
       '... which unsubscribes');
    $port_of{$calm_tag} = $to->port;
}

$cluster->wait_replicas_in_sync(20);
my $home = $cluster->node_by_port($port_of{$doomed});
my $slot = $cluster->keyslot($doomed);
my ($replica) = $cluster->replicas_of($home);
ok($replica, "port $port_of{$doomed} has a replica");
$stream->forget;
my $first = $stream->seq + 1;
my @acked;

$cluster->kill_node($home);

# another shard goes on: its session subscribes while the slot of the
# killed one has no primary
my $r = $bystander->subscribe('/other');
ok($r->{successful}, 'a session of another shard is served meanwhile');
ok(!$cluster->slot_node($slot), '... while the killed shard had no primary');

my $done = $stream->until_done(\@acked, sub {
    my $n = $cluster->slot_node($slot);
    $n && $n == $replica
}, within => 40, pause => 0.05);
ok($done, 'failover: port ' . $replica->port . " serves slot $slot");
ok(grep({ $_ eq '503::engine_unavailable' } $stream->statuses),
   'publishes got 503::engine_unavailable while one shard had no primary');

my @after = grep { $_->[1] >= ($done // time) } @acked;
$stream->turn(\@after) for 1 .. 10;
$stream->drain(within => 20, wait => 6, pause => 0.2);
my %seen = $stream->check('failover', $first, \@after,
                          'nothing acknowledged is lost',
                          after_failover => 1);
my @before = grep { $_->[1] < ($done // time) } @acked;
diag('failover: ' . (grep { !$seen{$_->[0]} } @before) . ' of '
     . scalar(@before) . ' messages acknowledged during the failover were '
     . 'lost (asynchronous replication)');

$_->stop for @servers;
for my $s (@servers) {
    unlike($s->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert in the error log of ' . $s->port);
}

done_testing();
