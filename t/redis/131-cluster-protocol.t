# The basic protocol suite (t/0NN-*.t, t/1NN-*.t) again, with the Redis
# engine on a Redis Cluster of this file's own (3 primaries, 3 replicas):
# every nginx those files start gets "bayeux_engine redis;" and the
# cluster's redis+cluster:// seeds at the http level (see
# Test::Bayeux::RedisEngine), as t/redis/010-protocol.t does with one
# Redis.  Each server has a prefix of its own, so the servers' slots
# spread over the three primaries.  Each file is one subtest; its own
# tests are reported inside it.
#
# The whole suite: on one Redis, t/redis/010-protocol.t takes about 3.5
# minutes here (2 cores, loaded); the cluster adds its start (about 6 s)
# and little per request.  Should it pass 6 minutes, the files that cover
# the engine are:
#
#   TEST_BAYEUX_FILES='t/010-handshake.t t/015-sessions.t t/020-connect.t
#     t/030-publish.t t/035-subscriptions.t t/040-queue.t t/057-ack.t
#     t/060-websocket.t t/115-activity.t t/130-lazy.t'
#
#   prove -v t/redis/131-cluster-protocol.t
#   TEST_BAYEUX_FILES='t/030-publish.t' prove -v t/redis/131-cluster-protocol.t

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Bayeux::Rerun;
use Test::Bayeux::RedisCluster;

my @files = protocol_files();

plan skip_all => 'no basic test files' unless @files;

my $cluster = start_redis_cluster(primaries => 3, replicas => 1);

$ENV{TEST_BAYEUX_REDIS_URL} = $cluster->url;

rerun($_, 'with the Redis engine on a Redis Cluster') for @files;

# the engine cleaned up after itself: only session keys can be left, and
# they all expire (-2: the key expired between SCAN and PTTL, which is
# fine); every key is in the slot of its server's "{prefix}"
my %keys = $cluster->scan('*bayeux:*', primaries => 1);
my @keys = map { @$_ } values %keys;
my @no_ttl = grep { ($cluster->cmd_key($_, 'PTTL', $_) // 0) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key the suite left behind has a TTL');
my @untagged = grep { !/^\{bayeux:[^{}]*\}/ } @keys;
is_deeply(\@untagged, [], 'every key is named {<prefix>}...');

done_testing();
