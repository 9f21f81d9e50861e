# The basic protocol suite (t/0NN-*.t, t/1NN-*.t) again, with the Redis
# engine in 3 shards (bayeux_redis_shards 3) on a Redis Cluster of this
# file's own (3 primaries, 3 replicas), one shard per primary: as
# t/redis/131-cluster-protocol.t, with every operation routed to the
# shard of its session or user, and publishes and channel counts to all
# of them.  Each file is one subtest.
#
# Under sanitizers, only the files that cover the engine (below).
#
#   prove -v t/redis/132-shards-protocol.t
#   TEST_BAYEUX_FILES='t/030-publish.t' prove -v t/redis/132-shards-protocol.t
#
# The same on one Redis:
#
#   TEST_BAYEUX_REDIS_SHARDS=3 prove -v t/redis/010-protocol.t

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Bayeux::Rerun;
use Test::Bayeux::RedisCluster;
use Test::Nginx::Bayeux::Server;

# under ASan and UBSan (make test-asan), the files that cover the
# engine: the sanitizers look at the engine's code, and the whole suite
# runs there on one Redis and on a Cluster already (t/redis/010, 131)
my @files = !$ENV{TEST_BAYEUX_FILES}
            && Test::Nginx::Bayeux::Server::sanitized()
    ? map({ "t/$_.t" } qw(010-handshake 015-sessions 020-connect
                          030-publish 035-subscriptions 040-queue 057-ack
                          060-websocket 105-publisher 106-notices
                          115-activity 130-lazy))
    : protocol_files();

plan skip_all => 'no basic test files' unless @files;

my $cluster = start_redis_cluster(primaries => 3, replicas => 1);

$ENV{TEST_BAYEUX_REDIS_URL} = $cluster->url;
$ENV{TEST_BAYEUX_REDIS_SHARDS} = 3;

rerun($_, 'with the Redis engine in 3 shards on a Redis Cluster')
    for @files;

# what the shards left expires, and each is in the slot of its shard's
# tag, "{<prefix><n>:}", on the primary of its third of the slots (which
# primaries hold what is left depends on the sessions not expired yet:
# t/redis/135-cluster-shards.t checks that each holds a shard)
my %keys = $cluster->scan('*bayeux:*', primaries => 1);
my @keys = map { @$_ } values %keys;
my @no_ttl = grep { ($cluster->cmd_key($_, 'PTTL', $_) // 0) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key the suite left behind has a TTL');
my @untagged = grep { !/^\{bayeux:[^{}]*:\d+:\}/ } @keys;
is_deeply(\@untagged, [], 'every key is named {<prefix><shard>:}...');
my %tags_on;
for my $port (keys %keys) {
    $tags_on{$port}{ /^(\{[^{}]*\})/ ? $1 : '?' } = 1
        for @{ $keys{$port} };
}
my %shared;
for my $port (keys %tags_on) {
    for my $other (grep { $_ ne $port } keys %tags_on) {
        $shared{$_} = 1
            for grep { $tags_on{$other}{$_} } keys %{ $tags_on{$port} };
    }
}
is_deeply([ sort keys %shared ], [], 'no shard is on two primaries');

done_testing();
