package Test::Bayeux::RedisEngine;

# Loaded with -M into a test file of the basic suite, it makes every nginx
# the file starts use the Redis engine on the Redis whose port is in
# TEST_BAYEUX_REDIS_PORT (see t/redis/010-protocol.t), or at the URL in
# TEST_BAYEUX_REDIS_URL (a Redis Cluster's redis+cluster:// seeds, see
# t/redis/131-cluster-protocol.t), which wins, in TEST_BAYEUX_REDIS_SHARDS
# shards if it is set (t/redis/132-shards-protocol.t): the directives are
# added at the http level, so a location that names its own engine keeps
# it, and one that names its own prefix too.  Servers with several
# workers are left alone: the blocks that start
# them test the memory engine's refusal of several workers.

use strict;
use warnings;

use Test::Nginx::Bayeux::Server;

my $url = $ENV{TEST_BAYEUX_REDIS_URL};
unless ($url) {
    my $port = $ENV{TEST_BAYEUX_REDIS_PORT}
        or die "TEST_BAYEUX_REDIS_PORT is not set\n";
    $url = "redis://127.0.0.1:$port/0";
}
my $prefix = $ENV{TEST_BAYEUX_REDIS_PREFIX} // 'bayeux:';
my $shards = $ENV{TEST_BAYEUX_REDIS_SHARDS}
    ? "bayeux_redis_shards $ENV{TEST_BAYEUX_REDIS_SHARDS};\n" : '';

my $new = \&Test::Nginx::Bayeux::Server::new;

# every server a prefix of its own, under the suite's: what one block
# leaves in Redis (sessions that have not expired yet, subscribed to
# "/**") reaches no other block's counts and deliveries
my $started = 0;

{
    no warnings 'redefine';
    *Test::Nginx::Bayeux::Server::new = sub {
        my ($class, %a) = @_;
        my $workers = $a{workers} // $ENV{TEST_NGINX_WORKERS} // 1;
        if (!$a{no_module} && $workers <= 1) {
            $a{http_config} = "bayeux_engine redis;\n"
                . "bayeux_redis_url $url;\n"
                . "bayeux_redis_prefix \"$prefix$$-" . ++$started . ":\";\n"
                . $shards
                . ($a{http_config} // '');
        }
        return $new->($class, %a);
    };
}

1;
