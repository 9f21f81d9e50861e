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

use TAP::Parser;
use Test::More;
use Test::Bayeux::Redis;

my @files = $ENV{TEST_BAYEUX_FILES}
            ? split(' ', $ENV{TEST_BAYEUX_FILES})
            : grep { !m{/000-} } sort glob('t/[01][0-9][0-9]-*.t');

plan skip_all => 'no basic test files' unless @files;

my $redis = start_redis();

$ENV{TEST_BAYEUX_REDIS_PORT} = $redis->port;

for my $file (@files) {
    subtest "$file with the Redis engine" => sub {
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
# they all expire (-2: the key expired between SCAN and PTTL, which is fine)
my @keys = $redis->scan('bayeux:*');
my @no_ttl = grep { $redis->cmd('PTTL', $_) == -1 } @keys;
is_deeply(\@no_ttl, [], 'every key the suite left behind has a TTL');

done_testing();
