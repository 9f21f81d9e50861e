package Test::Nginx::Bayeux;

# A small Test::Nginx::Socket-like harness on Debian's Test::Base, for the
# ngx_bayeux_module test suite.  See t/README.md for the sections, the
# environment variables and examples.
#
#   use lib 't/lib';
#   use Test::Nginx::Bayeux;
#   run_tests();            # no plan declared: the plan is counted for you
#   __DATA__
#   === TEST 1: ...
#   --- config
#   ...

use strict;
use warnings;

use Test::Base -base;

use Carp qw(croak);
use File::Path qw(remove_tree);
use JSON::PP ();
use Time::HiRes qw(time sleep);

use Test::Base::Filter ();

use Bayeux::HTTP;
use Test::Nginx::Bayeux::Server;

our @EXPORT = qw(
    run_tests run_test repeat_each block_defaults use_valgrind
    server_root_top json_mismatch
);

my $repeat_each = 1;
my %block_defaults;

# block_defaults(section => value, ...): sections that every block without
# its own gets, e.g. block_defaults(no_module => 1) or
# block_defaults(config => 'location /cometd { bayeux; }').
sub block_defaults {
    %block_defaults = (%block_defaults, @_);
    return;
}

# repeat_each(N): run every block N times (each time on a fresh server).
# Without an argument: the current count, for plans.
sub repeat_each {
    $repeat_each = shift if @_;
    return $repeat_each;
}

sub use_valgrind { Test::Nginx::Bayeux::Server::use_valgrind() }

sub server_root_top { Test::Nginx::Bayeux::Server::top_root() }

# Runs every block of the file.  If the file declared no plan, the tests are
# counted as they run (the plan is printed at the end), so a file only needs
#   run_tests();
sub run_tests {
    my $tb = Test::More->builder;
    plan('no_plan') unless $tb->has_plan;

    my @blocks = Test::Base::blocks();
    for my $block (@blocks) {
        for my $k (keys %block_defaults) {
            $block->{$k} = [ $block_defaults{$k} ] unless exists $block->{$k};
        }
        for my $rep (1 .. $repeat_each) {
            run_test($block, $rep);
        }
    }
    return;
}

# Skip blocks marked with --- skip (or --- skip: reason), whose --- skip_if
# expression is true, marked --- skip_valgrind when under valgrind, or
# --- skip_sanitizer when nginx is built with ASan or UBSan (tests that
# measure the worker's memory: the sanitizers' own allocator changes it).
# Test::Base already handles ONLY, SKIP and LAST.
sub _choose_blocks {
    my ($self, @hunks) = @_;
    my $blocks = $self->SUPER::_choose_blocks(@hunks);
    my @keep;
    for my $b (@$blocks) {
        if (exists $b->{skip}) {
            my $why = $b->{skip}[0];
            Test::More::note("skipping $b->{name}[0]"
                             . (length($why // '') ? ": $why" : ''));
            next;
        }
        if (exists $b->{skip_valgrind} && use_valgrind()) {
            Test::More::note("skipping $b->{name}[0] under valgrind");
            next;
        }
        if (exists $b->{skip_sanitizer}
            && Test::Nginx::Bayeux::Server::sanitized())
        {
            Test::More::note("skipping $b->{name}[0] under a sanitizer");
            next;
        }
        if (exists $b->{skip_if}) {
            my $expr = $b->{skip_if}[0];
            my $skip = do { package main; no strict; eval $expr };
            die "$b->{name}[0]: skip_if failed: $@" if $@;
            if ($skip) {
                Test::More::note("skipping $b->{name}[0]: $expr");
                next;
            }
        }
        push @keep, $b;
    }
    return \@keep;
}

# The values of a section: a list (one element unless an eval filter
# returned a list).
sub _section {
    my ($block, $name) = @_;
    return unless exists $block->{$name};
    my @v = @{ $block->{$name} };
    return @v;
}

sub _has { exists $_[0]->{ $_[1] } }

# The (first) value of a section, undef if absent.
sub _val {
    my ($block, $name) = @_;
    return exists $block->{$name} ? $block->{$name}[0] : undef;
}

# The expectation of a section for request $i of $n: an arrayref value (from
# --- xxx eval) gives one element per request; a plain value applies to all.
# Sections whose value is itself naturally an array (response_json,
# chunked_body, response_headers[_like] as a list of lines) are per request
# only when there are several requests (and, for chunked_body, the elements
# are arrayrefs).
my %array_valued = map { $_ => 1 } qw(response_json chunked_body
                                      response_headers response_headers_like);

sub _expect {
    my ($block, $name, $i, $n) = @_;
    return (0) unless exists $block->{$name};
    my @v = @{ $block->{$name} };
    my $v = $v[0];
    if (ref $v eq 'ARRAY') {
        my $per_request = !$array_valued{$name}
            || ($n > 1 && ($name ne 'chunked_body'
                           || !grep { ref $_ ne 'ARRAY' } @$v));
        return (1, $v) unless $per_request;
        return (0) if $i > $#$v;
        return (1, $v->[$i]);
    }
    if (@v > 1 && $n > 1) {
        return (0) if $i > $#v;
        return (1, $v[$i]);
    }
    return (1, $v);
}

sub _server_options {
    my ($block, $rep) = @_;
    my %o = (
        config => _val($block, 'config') // '',
        http_config => _val($block, 'http_config') // '',
        main_config => _val($block, 'main_config') // '',
        no_module => _has($block, 'no_module') ? 1 : 0,
        root => Test::Nginx::Bayeux::Server::top_root() . '/block-'
                . $block->seq_num . ($rep > 1 ? "-r$rep" : ''),
        name => $block->name,
    );
    for my $k (qw(workers log_level)) {
        my $v = _val($block, $k);
        $o{$k} = $v if defined $v && length $v;
    }
    $o{access_log} = 1 if _has($block, 'access_log');
    for my $k (qw(start_timeout stop_timeout)) {
        $o{$k} = _val($block, $k) if _val($block, $k);
    }
    if (_has($block, 'user_files')) {
        $o{user_files} = _parse_user_files(_val($block, 'user_files'));
    }
    return %o;
}

sub _parse_user_files {
    my ($v) = @_;
    return $v if ref $v eq 'HASH';
    return { @$v } if ref $v eq 'ARRAY';
    my %files;
    my $cur;
    for my $line (split /^/, $v // '') {
        if ($line =~ /^>>> (\S+)\s*$/) {
            $cur = $1;
            $files{$cur} = '';
        } elsif (defined $cur) {
            $files{$cur} .= $line;
        }
    }
    return \%files;
}

# Number of failed tests so far.
sub _failures {
    my @s = Test::More->builder->summary;
    return scalar grep { !$_ } @s;
}

# Runs one block (one repetition).
sub run_test {
    my ($block, $rep) = @_;
    $rep //= 1;
    my $name = $block->name;
    $name .= " (repeat $rep)" if $rep > 1;
    my $fails_before = _failures();

    if (_has($block, 'init')) {
        my $code = _val($block, 'init');
        do { package main; no strict; eval $code };
        if ($@) {
            Test::More::fail("$name - init");
            Test::More::diag($@);
            return;
        }
    }

    my $srv = Test::Nginx::Bayeux::Server->new(_server_options($block, $rep));
    $srv->{name} = $name;
    my $started = $srv->try_start;

    if (_has($block, 'must_die')) {
        Test::More::ok(!$started, "$name - nginx failed to start")
            or Test::More::diag("nginx started and listens on port "
                                . $srv->port);
        $srv->stop(quiet => 1) if $started;
        _check_error_logs($block, $name, $srv);
        _cleanup_block($srv, $fails_before);
        return;
    }

    my $start_error = $started ? undef
                    : "nginx did not start: " . ($srv->start_error // '');

    my @requests = eval { _requests($block, $srv) };
    if ($@) {
        Test::More::fail("$name - request section");
        Test::More::diag($@);
        $srv->stop if $started;
        _cleanup_block($srv, $fails_before);
        return;
    }

    # requests and conversations fail by themselves when nginx is not up
    if (!$started && !@requests && !_has($block, 'bayeux')) {
        Test::More::fail("$name - nginx started");
        Test::More::diag($start_error);
    }

    my $n = @requests;
    my $timeout = _val($block, 'timeout') || (use_valgrind() ? 30 : 10);
    for my $i (0 .. $#requests) {
        my $res = $started ? _send($requests[$i], $srv->port, $timeout)
                : Bayeux::HTTP::Response->new(error => $start_error,
                                              header_list => []);
        my $label = $n > 1 ? "$name (req $i)" : $name;
        _check_response($block, $label, $res, $i, $n);
    }

    if (_has($block, 'bayeux')) {
        if ($started) {
            _run_conversation($block, $name, $srv);
        } else {
            Test::More::fail("$name - bayeux conversation");
            Test::More::diag($start_error);
        }
    }

    $srv->stop if $started;
    _check_error_logs($block, $name, $srv, $start_error);
    _cleanup_block($srv, $fails_before);
}

sub _cleanup_block {
    my ($srv, $fails_before) = @_;
    if (_failures() > $fails_before) {
        Test::More::diag("server root of the failed block: " . $srv->root);
    } elsif (!$ENV{TEST_NGINX_SERVROOT} && !$ENV{TEST_NGINX_KEEP}) {
        remove_tree($srv->root);
    }
}

# The requests of a block: a list of hashes
#   { raw => [pieces], delay => s }  or
#   { method, uri, protocol, headers => [...], body, chunks, chunk_delay }
sub _requests {
    my ($block, $srv) = @_;

    if (_has($block, 'raw_request')) {
        my @v = _section($block, 'raw_request');
        my $pieces = ref $v[0] eq 'ARRAY' ? $v[0] : \@v;
        return ({
            raw => [ map { $srv->expand($_) } @$pieces ],
            delay => _val($block, 'raw_request_delay') // 0.05,
        });
    }

    my @texts;
    for my $sec ('request', 'request_eval') {
        next unless _has($block, $sec);
        my @v = _section($block, $sec);
        if ($sec eq 'request_eval') {
            @v = map {
                my $code = $_;
                my @r = do { package main; no strict; eval $code };
                die "request_eval: $@" if $@;
                @r;
            } @v;
        }
        push @texts, map { ref $_ eq 'ARRAY' ? @$_ : $_ } @v;
    }
    return () unless @texts;

    my $n = @texts;
    my @reqs;
    for my $i (0 .. $#texts) {
        my $text = $srv->expand($texts[$i]);
        die "empty request\n" unless defined $text && $text =~ /\S/;
        $text =~ s/\A\s+//;
        my ($line, $body) = split /\n/, $text, 2;
        $line =~ s/\r$//;
        $body //= '';
        $body =~ s/\r?\n\z//;
        my ($method, $uri, $protocol) = split ' ', $line;
        die "bad request line: '$line' (want: METHOD URI [PROTOCOL])\n"
            unless defined $uri;

        my @headers;
        my (undef, $mh) = _expect($block, 'more_headers', $i, $n);
        for my $h (split /\n/, $srv->expand($mh // '')) {
            next unless $h =~ /\S/;
            my ($hn, $hv) = $h =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/
                or die "bad header in more_headers: '$h'\n";
            push @headers, $hn, $hv;
        }
        my %hdr = map { lc($headers[2 * $_]) => $headers[2 * $_ + 1] }
                  0 .. @headers / 2 - 1;

        my $req = {
            method => $method,
            uri => $uri,
            protocol => $protocol // 'HTTP/1.1',
            headers => \@headers,
            body => $body,
        };

        my ($has_pieces, $pieces) = _expect($block, 'chunked_body', $i, $n);
        my $chunked = $has_pieces
            || ($hdr{'transfer-encoding'} // '') =~ /chunked/i;
        if ($chunked) {
            # the harness encodes the body; drop the header, it is re-added
            my @h;
            for (my $j = 0; $j < @headers; $j += 2) {
                push @h, $headers[$j], $headers[$j + 1]
                    unless lc $headers[$j] eq 'transfer-encoding';
            }
            $req->{headers} = \@h;
            if ($has_pieces) {
                die "use either a request body or chunked_body\n"
                    if length $body;
                $pieces = [ split /\n/, $pieces ] unless ref $pieces;
                $req->{chunks} = [ map { $srv->expand($_) } @$pieces ];
            } else {
                $req->{chunks} = [ Bayeux::HTTP::split_body(
                    $body, _val($block, 'chunk_size')) ];
            }
            $req->{chunk_delay} = _val($block, 'chunk_delay') // 0;
            $req->{body} = '';
        }
        push @reqs, $req;
    }
    return @reqs;
}

# Sends one request on a new connection and reads the response.
sub _send {
    my ($req, $port, $timeout) = @_;
    my $deadline = time + $timeout;
    my $res = eval {
        my $conn = Bayeux::HTTP::Connection->new(port => $port,
                                                 timeout => $timeout);
        if ($req->{raw}) {
            $conn->send_raw($req->{raw}, $req->{delay}, $deadline);
            my ($list, $raw, $closed) = $conn->read_all($deadline);
            my $first = $list->[0];
            if (!$first) {
                $first = Bayeux::HTTP::Response->new(
                    error => $closed ? "no response (connection closed)"
                                     : "timeout: no response in $timeout s",
                    raw => $raw, header_list => []);
            }
            $first->{all_responses} = $list;
            $first->{stream} = $raw;
            $first;
        } else {
            $conn->send_request(%$req, deadline => $deadline);
            $conn->read_response($deadline)
                // Bayeux::HTTP::Response->new(
                       timed_out => 1, header_list => [],
                       error => "timeout: no complete response in "
                                . "$timeout s (got: "
                                . length($conn->buffered) . " bytes)");
        }
    };
    return $res if $res;
    my $err = $@;
    chomp $err;
    return Bayeux::HTTP::Response->new(error => $err, header_list => []);
}

sub _check_response {
    my ($block, $name, $res, $i, $n) = @_;
    my $err = $res->error;
    my $checked = 0;
    my $diag_err = sub {
        Test::More::diag("request failed: $err") if defined $err;
    };

    if (my ($has, $code) = _expect($block, 'error_code', $i, $n)) {
        if ($has) {
            $checked++;
            Test::More::is($res->status, $code, "$name - status code ok")
                or $diag_err->();
        }
    }

    my ($hh, $hdrs) = _expect($block, 'response_headers', $i, $n);
    if ($hh) {
        for my $line (_lines($hdrs)) {
            $checked++;
            if ($line =~ /^!\s*(\S+)\s*$/) {
                my $hn = $1;
                Test::More::ok(!defined $res->header($hn),
                               "$name - header $hn absent")
                    or Test::More::diag("got $hn: " . $res->header($hn));
                next;
            }
            my ($hn, $hv) = $line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/
                or croak "$name: bad response_headers line '$line'";
            Test::More::is($res->header($hn), $hv, "$name - header $hn ok")
                or $diag_err->();
        }
    }

    my ($hl, $hdrs_like) = _expect($block, 'response_headers_like', $i, $n);
    if ($hl) {
        for my $line (_lines($hdrs_like)) {
            $checked++;
            my ($hn, $re) = $line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/
                or croak "$name: bad response_headers_like line '$line'";
            Test::More::like($res->header($hn) // '', qr/$re/,
                             "$name - header $hn like ok")
                or $diag_err->();
        }
    }

    if (my ($has, $body) = _expect($block, 'response_body', $i, $n)) {
        if ($has) {
            $checked++;
            Test::More::is($res->body, $body, "$name - response_body ok")
                or $diag_err->();
        }
    }

    for my $sec ('response_body_like', 'response_body_unlike') {
        my ($has, $pat) = _expect($block, $sec, $i, $n);
        next unless $has;
        $checked++;
        my $re = _regex($pat);
        my $body = $res->body;
        if ($sec eq 'response_body_like') {
            Test::More::like($body // '', $re, "$name - response_body_like ok")
                or $diag_err->();
        } else {
            Test::More::unlike($body // '', $re,
                               "$name - response_body_unlike ok")
                or $diag_err->();
        }
    }

    if (my ($has, $want) = _expect($block, 'response_json', $i, $n)) {
        if ($has) {
            $checked++;
            if (!ref $want) {
                $want = eval { JSON::PP->new->utf8(0)->decode($want) };
                croak "$name: response_json is not JSON: $@" if $@;
            }
            my $got = $res->json;
            my $why = defined $got ? json_mismatch($got, $want, '')
                    : "response body is not JSON: " . ($res->body // '');
            Test::More::ok(!defined $why, "$name - response_json ok")
                or do {
                    Test::More::diag($why);
                    $diag_err->();
                };
        }
    }

    if (!$checked && defined $err && !_has($block, 'ignore_response')
        && !_has($block, 'must_die'))
    {
        Test::More::diag("$name: request failed: $err");
    }
}

sub _lines {
    my ($v) = @_;
    return @$v if ref $v eq 'ARRAY';
    return grep { /\S/ } split /\n/, $v // '';
}

# A pattern from a section value: a qr// object, a "qr/.../flags" text, or
# a plain regex text (one trailing newline is dropped; /s applies).
sub _regex {
    my ($pat) = @_;
    return $pat if ref $pat eq 'Regexp';
    $pat //= '';
    $pat =~ s/\n\z//;
    if ($pat =~ m{^qr/(.*)/([msixpn]*)$}s) {
        my $re = eval "qr/$1/$2";
        croak "bad regex $pat: $@" if $@;
        return $re;
    }
    return qr/$pat/s;
}

# Compares decoded JSON with an expected structure: hashes are matched as
# subsets (extra keys in the response are fine), arrays element by element
# (same length), qr// objects match strings, JSON booleans compare as 1/0.
# Returns undef when it matches, else a description of the first mismatch.
sub json_mismatch {
    my ($got, $want, $path) = @_;
    $path = '$' . ($path // '') if ($path // '') !~ /^\$/;
    if (ref $want eq 'Regexp') {
        return "$path: got " . _j($got) . ", want $want"
            if !defined $got || ref $got && !JSON::PP::is_bool($got)
               || "$got" !~ $want;
        return undef;
    }
    if (ref $want eq 'HASH') {
        return "$path: got " . _j($got) . ", want an object"
            unless ref $got eq 'HASH';
        for my $k (sort keys %$want) {
            return "$path: missing key '$k'" unless exists $got->{$k};
            my $m = json_mismatch($got->{$k}, $want->{$k}, "$path\{$k}");
            return $m if defined $m;
        }
        return undef;
    }
    if (ref $want eq 'ARRAY') {
        return "$path: got " . _j($got) . ", want an array"
            unless ref $got eq 'ARRAY';
        return "$path: got " . @$got . " elements, want " . @$want
            . ": " . _j($got)
            unless @$got == @$want;
        for my $i (0 .. $#$want) {
            my $m = json_mismatch($got->[$i], $want->[$i], "$path\[$i]");
            return $m if defined $m;
        }
        return undef;
    }
    if (!defined $want) {
        return defined $got ? "$path: got " . _j($got) . ", want null" : undef;
    }
    if (JSON::PP::is_bool($want) || JSON::PP::is_bool($got)) {
        return undef if JSON::PP::is_bool($got) && JSON::PP::is_bool($want)
                        && !!$got == !!$want;
        return undef if JSON::PP::is_bool($got) && !ref $want
                        && $want =~ /^[01]$/ && !!$got == !!$want;
        return "$path: got " . _j($got) . ", want " . _j($want);
    }
    return "$path: got " . _j($got) . ", want " . _j($want)
        if !defined $got || ref $got || "$got" ne "$want";
    return undef;
}

sub _j {
    my ($v) = @_;
    return 'nothing' unless defined $v;
    return "$v" if ref $v eq 'Regexp';
    return JSON::PP->new->canonical->allow_nonref->allow_blessed
               ->convert_blessed->encode($v);
}

# The patterns of an error_log / no_error_log section: lines (plain
# substrings, or qr/.../ regexes), or from '--- error_log eval' a string, a
# qr// or an arrayref of them.
sub _log_patterns {
    my ($block, $sec) = @_;
    my @out;
    for my $v (_section($block, $sec)) {
        my @items = ref $v eq 'ARRAY' ? @$v : ($v);
        for my $item (@items) {
            if (ref $item eq 'Regexp') {
                push @out, $item;
            } elsif (($block->{_section_map}[0]{$sec}{filters} // '')
                     =~ /\beval\b/)
            {
                push @out, $item;
            } else {
                for my $line (split /\n/, $item // '') {
                    next unless $line =~ /\S/;
                    $line =~ s/^\s+|\s+$//g;
                    push @out, $line =~ m{^qr/.*/[msixpn]*$} ? _regex($line)
                                                             : $line;
                }
            }
        }
    }
    return @out;
}

sub _check_error_logs {
    my ($block, $name, $srv, $start_error) = @_;
    return unless _has($block, 'error_log') || _has($block, 'no_error_log');

    my $log = $srv->all_log_text;
    for my $sec ('error_log', 'no_error_log') {
        for my $pat (_log_patterns($block, $sec)) {
            my ($found, $line) = _find_in_log($log, $pat);
            my $show = ref $pat ? "$pat" : $pat;
            if ($sec eq 'error_log') {
                Test::More::ok($found, "$name - error log has: $show")
                    or Test::More::diag(
                        ($start_error ? "$start_error\n" : '')
                        . "error log tail:\n" . _tail($log, 20));
            } else {
                Test::More::ok(!$found, "$name - error log has no: $show")
                    or Test::More::diag("matching line: $line");
            }
        }
    }
}

sub _find_in_log {
    my ($log, $pat) = @_;
    for my $line (split /\n/, $log) {
        if (ref $pat ? $line =~ $pat : index($line, $pat) >= 0) {
            return (1, $line);
        }
    }
    # a regex may span lines
    return (1, '(multi-line match)') if ref $pat && $log =~ $pat;
    return (0, undef);
}

sub _tail {
    my ($text, $n) = @_;
    my @l = split /\n/, $text // '';
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l) || '(empty)';
}

# --- bayeux: Perl code run while the server is up.  In it: $server (the
# Test::Nginx::Bayeux::Server), $port, $block, client(%opts) (a
# Bayeux::Client on this server, path /cometd unless given), and Test::More.
sub _run_conversation {
    my ($block, $name, $srv) = @_;
    my $text = $srv->expand(_val($block, 'bayeux'));
    my $file = $name;
    $file =~ s/"/'/g;
    my $src = "package Test::Nginx::Bayeux::Conversation;\n"
            . "use strict; use warnings; use Test::More;\n"
            . "use Time::HiRes qw(time sleep);\n"
            . "sub { my (\$server, \$block) = \@_;\n"
            . "my \$port = \$server->port;\n"
            . "\n#line 1 \"$file, bayeux section\"\n"
            . "$text\n;}";
    my $code = eval $src;
    if (!$code) {
        Test::More::fail("$name - bayeux section compiles");
        Test::More::diag($@);
        return;
    }
    local $Test::Nginx::Bayeux::Conversation::SERVER = $srv;
    my $ok = eval { $code->($srv, $block); 1 };
    if (!$ok) {
        Test::More::fail("$name - bayeux section ran to the end");
        Test::More::diag($@);
    }
}


package Test::Nginx::Bayeux::Conversation;

use strict;
use warnings;

our $SERVER;

sub server { $SERVER }

sub client {
    my (%o) = @_;
    return $SERVER->client(%o);
}


package Test::Nginx::Bayeux::Block;

# raw_request is sent byte for byte: Test::Base's default filters (norm:
# CRLF to LF, trim: drop blank lines at the ends) do not apply to it.

use strict;
use warnings;

our @ISA = ('Test::Base::Block');

sub _get_filters {
    my ($self, $type, @rest) = @_;
    my @f = $self->SUPER::_get_filters($type, @rest);
    @f = grep { $_ ne 'norm' && $_ ne 'trim' } @f if $type eq 'raw_request';
    return @f;
}


package Test::Nginx::Bayeux::Filter;

# Test::Base's eval filter returns the error text as the value when the
# code does not compile; ours dies so that mistakes are seen.

use strict;
use warnings;

our @ISA = ('Test::Base::Filter');

sub eval {
    my ($self, @v) = @_;
    my $code = join '', @v;
    my @r = do { package main; no strict; CORE::eval($code) };
    if ($@) {
        my $b = $self->current_block;
        my $where = $b ? $b->name : 'a block';
        die "eval of a section of $where failed: $@";
    }
    return @r;
}

1;
