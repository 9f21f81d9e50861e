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

use TAP::Parser;
use Test::More;
use Test::Bayeux::RedisCluster;

my @files = $ENV{TEST_BAYEUX_FILES}
            ? split(' ', $ENV{TEST_BAYEUX_FILES})
            : grep { !m{/000-} } sort glob('t/[01][0-9][0-9]-*.t');

plan skip_all => 'no basic test files' unless @files;

my $cluster = start_redis_cluster(primaries => 3, replicas => 1);

$ENV{TEST_BAYEUX_REDIS_URL} = $cluster->url;

for my $file (@files) {
    subtest "$file with the Redis engine on a Redis Cluster" => sub {
        my $parser = TAP::Parser->new({
            source => $file,
            switches => [ '-It/lib', '-It/redis/lib',
                          '-MTest::Bayeux::RedisEngine' ],
            merge => 1,
        });
        my $tests = 0;
        while (my $r = $parser->next) {
            if ($r->is_test) {
                $tests++;
                my $desc = $r->description;
                $desc =~ s/^-\s*//;
                if ($r->has_skip) {
                    pass("$desc # skipped in $file");
                } else {
                    ok($r->is_actual_ok || $r->has_todo, $desc);
                }
            } elsif ($r->is_plan && $r->directive eq 'SKIP') {
                plan skip_all => "$file: " . $r->explanation;
            } elsif ($r->is_comment || $r->is_unknown) {
                my $text = $r->as_string;
                diag($text) if $text =~ /\S/ && !$r->is_comment
                               || $text =~ /Failed test|got:|expected:/;
                note($text) if $r->is_comment;
            }
        }
        ok($tests > 0, "$file ran tests");
        is($parser->exit, 0, "$file exited cleanly");
    };
}

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
