#!/usr/bin/perl
# Interop suite: the official CometD JavaScript client and Faye's client,
# driven from Node against the module (t/interop/*.test.js, node:test),
# over each of their transports, on the memory engine and on the Redis
# engine with 2 workers (t/interop/lib/matrix.js; a redis-server of its
# own, skipped without redis-server except under CI=true).
#
# This file lets `prove -r t/` run them: t/interop/lib/node-tap.pl runs
#     node --test --test-reporter=tap t/interop/*.test.js
# and passes its TAP on as flat TAP (one test line per test, the plan at
# the end); the exit status is non-zero when a test fails.
#
# npm packages: util/npm-deps.  Without node or the packages the suite is
# skipped, except under CI=true, where that is a failure.
# TEST_INTEROP_FILES="t/interop/faye.test.js ..." runs only those files;
# TEST_INTEROP_ONLY="websocket/redis long-polling" only those combinations;
# TEST_NODE_TIMEOUT (default 600 s) bounds the whole run.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);

$| = 1;

my $top = abs_path(dirname(__FILE__) . '/..');
my $ci = ($ENV{CI} // '') eq 'true';

sub unavailable {
    my ($why) = @_;
    if ($ci) {
        print "1..1\nnot ok 1 - interop suite: $why\n";
        exit 1;
    }
    print "1..0 # SKIP $why\n";
    exit 0;
}

chomp(my $node = `command -v node 2>/dev/null` // '');
unavailable('node is not installed (util/deps test installs it)')
    unless $node;

for my $pkg (qw(cometd cometd-nodejs-client faye)) {
    unavailable("npm package $pkg is missing: run util/npm-deps")
        unless -f "$top/node_modules/$pkg/package.json";
}

my $module = $ENV{TEST_NGINX_MODULE} || "$top/build/ngx_bayeux_module.so";
unavailable("$module is missing: run make") unless -f $module;

my @files = $ENV{TEST_INTEROP_FILES}
    ? map { abs_path($_) } split ' ', $ENV{TEST_INTEROP_FILES}
    : sort glob("$top/t/interop/*.test.js");
unavailable('no t/interop/*.test.js') unless @files;

chdir $top or die "chdir $top: $!";
exec($^X, "$top/t/interop/lib/node-tap.pl", @files) or die "exec: $!";
