# util/fuzz, briefly, on each engine: mutated long-poll, form, JSONP,
# websocket and HTTP-layer inputs; the worker must not crash (nor, with
# the ASan build of make test-asan, report anything) and must still serve
# a fresh handshake.  TEST_FUZZ_SECONDS (default 20) per engine; the seed
# changes every run and is printed, so a failure can be replayed:
#
#   util/fuzz --engine memory --seed N [--binary build/asan/sbin/nginx]
#
# The nginx is TEST_NGINX_BINARY's, as for the other files.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Cwd qw(abs_path);
use File::Path qw(make_path remove_tree);
use Test::More;

# (t/redis/010-protocol.t reruns the basic files on Redis: this one runs
# both engines itself)
plan skip_all => 'fuzzes both engines itself'
    if $INC{'Test/Bayeux/RedisEngine.pm'};

my $seconds = $ENV{TEST_FUZZ_SECONDS} // 20;
plan skip_all => 'TEST_FUZZ_SECONDS=0' unless $seconds > 0;

my $top = abs_path('.');
my $out = "$top/t/servroot-fuzz-$$";
make_path($out);

require Test::Bayeux::Redis;
my @engines = ('memory');
push @engines, 'redis' if Test::Bayeux::Redis::redis_binary();

for my $engine (@engines) {
    my $seed = (time + $$) % 1000000;
    my @cmd = ($^X, "$top/util/fuzz", '--engine', $engine, '--seed', $seed,
               '--seconds', $seconds, '--out', $out);
    my $text = `@cmd 2>&1`;
    my $rc = $? >> 8;
    my ($sent) = $text =~ /util\/fuzz: (\d+) inputs/;
    ok $rc == 0, "$engine engine: no crash in $seconds s of fuzzing "
        . "(seed $seed)" or diag($text);
    cmp_ok $sent // 0, '>', 0, "$engine engine: inputs were sent";
    note($text);
}

if (Test::More->builder->is_passing) {
    remove_tree($out);
} else {
    diag("fuzzer output and saved inputs in $out");
}

done_testing();
