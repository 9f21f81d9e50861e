#!/usr/bin/perl
# The chat demo (make demo) in headless Chromium: t/browser/*.test.js,
# node:test with playwright-core driving Debian's chromium.
#
# This file lets `prove -r t/` run it, through t/interop/lib/node-tap.pl
# (flat TAP, non-zero exit on failure).  Without node or the npm packages
# it is skipped, except under CI=true, where that is a failure; the test
# itself does the same when chromium is missing.  util/npm-deps installs
# all of it.

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
        print "1..1\nnot ok 1 - browser test: $why\n";
        exit 1;
    }
    print "1..0 # SKIP $why\n";
    exit 0;
}

chomp(my $node = `command -v node 2>/dev/null` // '');
unavailable('node is not installed (util/deps test installs it)')
    unless $node;

for my $pkg (qw(cometd playwright-core)) {
    unavailable("npm package $pkg is missing: run util/npm-deps")
        unless -f "$top/node_modules/$pkg/package.json";
}

my $module = $ENV{TEST_NGINX_MODULE} || "$top/build/ngx_bayeux_module.so";
unavailable("$module is missing: run make") unless -f $module;

my @files = sort glob("$top/t/browser/*.test.js");
unavailable('no t/browser/*.test.js') unless @files;

chdir $top or die "chdir $top: $!";
exec($^X, "$top/t/interop/lib/node-tap.pl", @files) or die "exec: $!";
