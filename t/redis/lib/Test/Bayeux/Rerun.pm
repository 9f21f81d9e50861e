package Test::Bayeux::Rerun;

# Runs the basic protocol suite's files (t/0NN-*.t, t/1NN-*.t) again with
# the Redis engine: each file is one subtest of the calling test, its own
# tests reported inside it.  Every nginx the file starts gets the engine
# from Test::Bayeux::RedisEngine, which reads where Redis is from the
# environment the caller set (TEST_BAYEUX_REDIS_PORT or
# TEST_BAYEUX_REDIS_URL).
#
#   for my $file (protocol_files()) {
#       rerun($file, 'with the Redis engine');
#   }
#
# TEST_BAYEUX_FILES='t/030-publish.t t/057-ack.t' picks the files.

use strict;
use warnings;

use Exporter 'import';
use TAP::Parser;
use Test::More;

our @EXPORT = qw(protocol_files rerun);

sub protocol_files {
    return split(' ', $ENV{TEST_BAYEUX_FILES}) if $ENV{TEST_BAYEUX_FILES};
    return grep { !m{/000-} } sort glob('t/[01][0-9][0-9]-*.t');
}

sub rerun {
    my ($file, $label) = @_;

    subtest "$file $label" => sub {
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

1;
