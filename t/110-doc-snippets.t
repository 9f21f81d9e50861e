# Every nginx configuration in the documentation runs as written: each
# ```nginx fenced block of README.md and docs/*.md is checked with
# "nginx -t" and the built module, one test per block, named by file and
# line ("README.md:8").
#
# How a block becomes a configuration.  A block is one of five shapes,
# written as an HTML comment on the line before the fence (invisible on
# GitHub), e.g.
#
#     <!-- snippet: location -->
#     ```nginx
#
# or, without the comment, inferred from the directives at the block's
# top level (outside any braces):
#
#   full      there is an "http {" block: a whole nginx.conf, tested as
#             written (nothing added, nothing removed);
#   main      main-level directives only (load_module, worker_*, events,
#             user, pid, env, ...): written at the main level, followed by
#             "events {}" (unless the block has its own) and "http {}";
#   http      there is a "server {" block: inside http {};
#   server    there is a "location" block, or directives only: inside
#             http { server { } };
#   location  (only by the comment) inside http { server { location / { } } }.
#
# Every shape but full starts with "load_module modules/ngx_bayeux_module.so;"
# and "events {}", as the README's Synopsis.
#
# What the test provides, so that blocks need no editing:
#   - nginx runs with -p <dir>/ (nginx's prefix, as Debian's is
#     /usr/share/nginx) and -c conf/nginx.conf, so that
#     "load_module modules/ngx_bayeux_module.so;" finds <dir>/modules/,
#     a link to the built module (any other path ending in
#     ngx_bayeux_module.so is replaced by the built module's; with an
#     nginx that has the module compiled in, TEST_NGINX_MODULE=static,
#     such lines are dropped);
#   - conf/mime.types (nginx's own, for "include mime.types;");
#   - for "bayeux_jwt_key RS256|ES256 file": a public key of that type at
#     that path, relative to conf/ (an absolute path is replaced by one
#     under conf/).
# nginx -t opens no listening socket and connects to nothing, so ports,
# upstream addresses and Redis URLs are left as written; "/path/to/..."
# in alias is not checked by nginx either.
#
# A block passes when nginx -t exits with 0 and prints no "[emerg]" and
# no "[warn]" (a warning in a documented configuration is a mistake in
# the documentation too).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Path qw(make_path remove_tree);
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::JWT qw(jwt_keypair);

my $REPO = $Test::Nginx::Bayeux::Server::REPO;
my $BIN = Test::Nginx::Bayeux::Server::default_binary();
my $MODULE = Test::Nginx::Bayeux::Server::module_path($BIN);
my $STATIC = $MODULE =~ /^(?:static|none)$/;

plan skip_all => "no module at $MODULE (run make)"
    unless $STATIC || -f $MODULE;

# (t/redis/010-protocol.t runs t/1NN files again on the Redis engine: the
# configurations here are the documentation's, whatever the engine)
plan skip_all => 'the same on every engine'
    if $INC{'Test/Bayeux/RedisEngine.pm'};

my %MAIN = map { $_ => 1 } qw(load_module worker_processes
    worker_rlimit_nofile worker_rlimit_core worker_cpu_affinity
    worker_priority worker_shutdown_timeout events user pid env daemon
    master_process thread_pool pcre_jit timer_resolution lock_file
    working_directory error_log include);

my @files = ('README.md', sort glob("$REPO/docs/*.md"));
s{^\Q$REPO\E/}{} for @files;

my @blocks;
for my $file (@files) {
    push @blocks, extract($file);
}

ok @blocks >= 10, scalar(@blocks) . ' nginx blocks found';

my $seq = 0;
for my $b (@blocks) {
    check($b);
}

done_testing;


# [{ file, line (of the fence), text, marker }]
sub extract {
    my ($file) = @_;
    open my $fh, '<', "$REPO/$file" or die "$file: $!\n";
    my @lines = <$fh>;
    close $fh;

    my (@out, $cur, $prev);
    for my $i (0 .. $#lines) {
        my $l = $lines[$i];
        if ($cur) {
            if ($l =~ /^\s*```\s*$/) {
                push @out, $cur;
                undef $cur;
            } else {
                $cur->{text} .= $l;
            }
            next;
        }
        if ($l =~ /^\s*```nginx\s*$/) {
            $cur = { file => $file, line => $i + 1, text => '' };
            $cur->{marker} = $1
                if defined $prev && $prev =~ /<!--\s*snippet:\s*(\w+)\s*-->/;
        }
        $prev = $l if $l =~ /\S/;
    }
    die "$file: a ```nginx block is not closed\n" if $cur;
    return @out;
}

# the directive names and block names at brace depth 0
sub top_level {
    my ($text) = @_;
    my ($depth, $start, @names) = (0, 1);
    (my $t = $text) =~ s/#[^\n]*//g;
    while ($t =~ /\G\s*([^\s;{}]+|[;{}])/gc) {
        my $tok = $1;
        if ($tok eq '{') {
            $depth++;
            $start = 1;
        } elsif ($tok eq '}') {
            $depth--;
            $start = 1;
        } elsif ($tok eq ';') {
            $start = 1;
        } elsif ($start) {
            push @names, $tok if $depth == 0;
            $start = 0;
        }
    }
    return @names;
}

sub shape {
    my ($b) = @_;
    return $b->{marker} if $b->{marker};
    my @top = top_level($b->{text});
    my %has = map { $_ => 1 } @top;
    return 'full' if $has{http};
    return 'main' if @top && !grep { !$MAIN{$_} } @top;
    return 'http' if $has{server};
    return 'server';
}

sub indent {
    my ($text, $n) = @_;
    my $pad = ' ' x $n;
    return join '', map { /\S/ ? "$pad$_" : $_ } split /^/, $text;
}

sub wrap {
    my ($shape, $text) = @_;
    return $text if $shape eq 'full';

    my $conf = "load_module modules/ngx_bayeux_module.so;\n";

    if ($shape eq 'main') {
        $conf .= $text;
        $conf .= "events {}\n" unless grep { $_ eq 'events' } top_level($text);
        return $conf . "http {}\n";
    }

    $conf .= "events {}\n";
    my $inner = $shape eq 'location'
        ? "location / {\n" . indent($text, 4) . "}\n"
        : $text;
    $inner = "server {\n" . indent($inner, 4) . "}\n"
        unless $shape eq 'http';
    die "unknown snippet shape \"$shape\"\n"
        unless $shape =~ /^(?:http|server|location)$/;
    return $conf . "http {\n" . indent($inner, 4) . "}\n";
}

# the module's load_module lines: the built module, or none for a static
# nginx
sub fix_module {
    my ($conf) = @_;
    my $re = qr/^[ \t]*load_module[ \t]+(\S*ngx_bayeux_module\.so);[^\n]*\n/m;
    if ($STATIC) {
        $conf =~ s/$re//g;
    } else {
        $conf =~ s{$re}{
            my $l = $&;
            $1 eq 'modules/ngx_bayeux_module.so' ? $l
                : "load_module $MODULE;\n"
        }ge;
    }
    return $conf;
}

# key files for bayeux_jwt_key RS256/ES256, under conf/
sub provide_keys {
    my ($conf, $dir) = @_;
    $conf =~ s{^([ \t]*bayeux_jwt_key[ \t]+(RS256|ES256)[ \t]+)(\S+);}{
        my ($pre, $alg, $path) = ($1, uc $2, $3);
        my $name = $path;
        $name =~ s{.*/}{} if $path =~ m{^/};
        my $dest = "$dir/conf/$name";
        unless (-e $dest) {
            my ($priv, $pub) = jwt_keypair("$dir/keys", $alg,
                                           name => "k$seq-" . lc $alg);
            rename $pub, $dest or die "rename $pub: $!\n";
        }
        "$pre$name;"
    }gime;
    return $conf;
}

sub check {
    my ($b) = @_;
    my $name = "$b->{file}:$b->{line}";
    my $shape = shape($b);
    my $dir = Test::Nginx::Bayeux::Server::top_root() . '/snippet-' . ++$seq;

    remove_tree($dir) if -e $dir;
    make_path("$dir/conf", "$dir/logs", "$dir/modules", "$dir/keys");
    symlink $MODULE, "$dir/modules/ngx_bayeux_module.so"
        or die "symlink: $!\n" unless $STATIC;
    for my $m ('/etc/nginx/mime.types',
               "$REPO/build/nginx/conf/mime.types")
    {
        next unless -f $m;
        system('cp', $m, "$dir/conf/mime.types") == 0 or die "cp $m\n";
        last;
    }

    my $conf = provide_keys(fix_module(wrap($shape, $b->{text})), $dir);

    open my $fh, '>', "$dir/conf/nginx.conf" or die "$dir: $!\n";
    print $fh $conf;
    close $fh;

    local %ENV = %ENV;
    if (Test::Nginx::Bayeux::Server::sanitized()) {
        my %o = Test::Nginx::Bayeux::Server::sanitizer_options();
        $ENV{$_} //= $o{$_} for keys %o;
    }

    my $out = `'$BIN' -t -q -p '$dir/' -c conf/nginx.conf -e '$dir/logs/error.log' 2>&1`;
    my $rc = $? >> 8;
    $out .= do { local (@ARGV, $/) = ("$dir/logs/error.log"); <> // '' }
        if -s "$dir/logs/error.log";

    my @bad = grep { /\[(?:emerg|warn|alert|crit)\]/ } split /\n/, $out;

    if (ok $rc == 0 && !@bad, "$name ($shape) passes nginx -t") {
        remove_tree($dir);
    } else {
        diag "nginx -t exited with $rc:\n$out\nconfiguration ($dir):\n"
             . numbered($conf);
    }
}

sub numbered {
    my ($text) = @_;
    my $n = 0;
    return join '', map { sprintf "%4d  %s", ++$n, $_ } split /^/, $text;
}
