# The basic protocol suite (t/0NN-*.t, t/1NN-*.t) again, with the Redis engine: every
# nginx those files start gets "bayeux_engine redis;" at the http level,
# pointing at a Redis of this file's own (see Test::Bayeux::RedisEngine).
# Each file is one subtest; its own tests are reported inside it.
#
#   prove -v t/redis/010-protocol.t
#   TEST_BAYEUX_FILES='t/030-publish.t' prove -v t/redis/010-protocol.t

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Bayeux::Rerun;
use Test::Bayeux::Redis;

my @files = protocol_files();

plan skip_all => 'no basic test files' unless @files;

my $redis = start_redis();

$ENV{TEST_BAYEUX_REDIS_PORT} = $redis->port;

rerun($_, 'with the Redis engine') for @files;

# the engine cleaned up after itself: only session keys can be left, and
# they all expire (-2: the key expired between SCAN and PTTL, which is fine)
my @keys = $redis->scan('bayeux:*');
my @no_ttl = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key the suite left behind has a TTL');

done_testing();
