#!/usr/bin/perl
# Runs node's test runner on the files given and turns its TAP into flat
# TAP that prove reads as one test file (used by t/interop.t and
# t/browser.t):
#
#     perl t/interop/lib/node-tap.pl FILE.test.js ...
#
# node --test --test-reporter=tap writes nested subtests, and with several
# files numbers out of sequence and YAML that TAP::Parser cannot read.
# Here: one test line per test, named "suite > test", numbered in order,
# the plan at the end.  A suite or file that fails by itself (a hook, a
# crash) is a failed test line too.  The details of each failure are
# printed as comments and on stderr.  Exits non-zero when a test fails or
# node does.  TEST_NODE_TIMEOUT (default 600 s) bounds the whole run.

use strict;
use warnings;

$| = 1;

my $deadline = $ENV{TEST_NODE_TIMEOUT} || 600;
my @files = @ARGV or die "usage: node-tap.pl FILE.test.js ...\n";

chomp(my $node = `command -v node 2>/dev/null` // '');
die "node-tap.pl: node is not installed\n" unless $node;

my @cmd = ($node, '--test', '--test-reporter=tap');

# a client library that leaves a timer behind must not hang the run
push @cmd, '--test-force-exit'
    if system("$node --test-force-exit -e 0 >/dev/null 2>&1") == 0;

my $pid = open(my $tap, '-|');
die "fork: $!" unless defined $pid;

if ($pid == 0) {
    setpgrp(0, 0);          # one group: the watchdog ends nginx too
    exec(@cmd, @files) or die "exec $node: $!";
}

my $n = 0;                  # test lines written
my $failed = 0;             # of them, failed (not TODO)

local $SIG{ALRM} = sub {
    kill 'KILL', -$pid;
    print "Bail out! node --test did not finish within $deadline s\n";
    exit 1;
};
alarm $deadline;

# node's TAP, line by line.  Depth = indentation / 4.
my @names;                  # "# Subtest: name" by depth
my %parent;                 # depth -> the next test line there has children
my @failures_below;         # depth -> failed tests under the open parent
my $pending;                # test line waiting for the end of its YAML
my $in_yaml = 0;

sub flush_pending {
    my $t = $pending or return;
    $pending = undef;

    my $name = join(' > ', @names[0 .. $t->{depth} - 1], $t->{desc});
    $name =~ s/^\s+|\s+$//g;
    my $directive = $t->{directive} ? " # $t->{directive}" : '';
    my $ok = $t->{ok};

    if ($t->{is_parent}) {
        # a suite: its tests were written; write it only if it failed
        # by itself (a hook, the file)
        my $below = $failures_below[$t->{depth}] || 0;
        $failures_below[$t->{depth}] = 0;
        return if $ok || $below || $directive;
    }

    $n++;
    print(($ok ? 'ok' : 'not ok') . " $n - $name$directive\n");

    return if $ok;

    if (!$directive) {
        $failed++;
        $failures_below[$_]++ for 0 .. $t->{depth} - 1;
    }

    my $yaml = join('', map { "#   $_\n" } @{ $t->{yaml} });
    print $yaml;
    print STDERR "# not ok $n - $name$directive\n$yaml" unless $directive;
}

while (my $line = <$tap>) {
    chomp $line;

    if ($in_yaml) {
        if ($line =~ /^\s*\.\.\.\s*$/) {
            $in_yaml = 0;
            flush_pending();
        } elsif ($pending) {
            (my $y = $line) =~ s/^\s{0,$pending->{yindent}}//;
            push @{ $pending->{yaml} }, $y
                unless $y =~ /\((?:node:internal|node:async_hooks)|^\s+async Promise\.all/;
        }
        next;
    }

    if ($pending && $line =~ /^(\s*)---\s*$/) {
        $in_yaml = 1;
        $pending->{yindent} = length $1;
        next;
    }

    flush_pending();

    if ($line =~ /^(\s*)(not ok|ok) \d+ - (.*?)(?: # (TODO|SKIP)\b(.*))?$/) {
        my $depth = int(length($1) / 4);
        $pending = {
            depth => $depth,
            ok => $2 eq 'ok',
            desc => $3,
            directive => $4 ? "$4$5" : '',
            is_parent => delete $parent{$depth},
            yaml => [],
        };
        $#names = $depth - 1 if $#names >= $depth;
        next;
    }

    if ($line =~ /^(\s*)# Subtest: (.*)$/) {
        my $depth = int(length($1) / 4);
        $#names = $depth - 1;
        $names[$depth] = $2;
        next;
    }

    if ($line =~ /^(\s*)1\.\.\d+/) {
        my $depth = int(length($1) / 4);
        $parent{$depth - 1} = 1 if $depth > 0;
        next;
    }

    next if $line =~ /^TAP version/;

    # comments (the summary, the tests' own output) and anything else
    $line =~ s/^\s*#\s?//;
    print "# $line\n";
}
flush_pending();

close $tap;
my $status = $?;
alarm 0;

if ($n == 0) {
    print "1..1\nnot ok 1 - node --test ran no test (exit status $status)\n";
    exit 1;
}

print "1..$n\n";

if ($status != 0 && !$failed) {
    print STDERR "# node --test exited with status $status\n";
}
exit($status == 0 && !$failed ? 0 : 1);
