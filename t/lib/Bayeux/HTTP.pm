package Bayeux::HTTP;

# A small HTTP/1.1 client layer over raw sockets, shared by the test harness
# (Test::Nginx::Bayeux) and the Bayeux client helper (Bayeux::Client).
#
# Everything works with deadlines (absolute Time::HiRes times), so several
# requests can be outstanding on several connections at once and a test can
# wait for any of them without blocking the others.
#
#   my $conn = Bayeux::HTTP::Connection->new(port => $port);
#   $conn->send_request(method => 'POST', uri => '/x', body => '...',
#                       headers => [ 'Content-Type' => 'application/json' ]);
#   my $res = $conn->read_response(time + 5);   # undef on timeout
#   print $res->status, $res->header('Content-Type'), $res->body;

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use IO::Select;
use IO::Socket::IP;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

our $DEFAULT_HOST = '127.0.0.1';

# Builds the bytes of a request head.  %a: method, uri, protocol, headers
# (arrayref of name => value pairs, kept in order), host, keepalive,
# body (for Content-Length), chunked (no Content-Length, adds
# Transfer-Encoding: chunked).  A header given in 'headers' replaces the
# default of the same name (Host, Connection, Content-Length).
sub build_head {
    my (%a) = @_;

    my $method = $a{method} // 'GET';
    my $uri = $a{uri} // '/';
    my $protocol = $a{protocol} // 'HTTP/1.1';
    my @headers = @{ $a{headers} || [] };
    my $body = $a{body} // '';

    my %have;
    for (my $i = 0; $i < @headers; $i += 2) {
        $have{ lc $headers[$i] } = 1;
    }

    my @defaults;
    push @defaults, Host => ($a{host} // 'localhost') unless $have{host};
    push @defaults, Connection => ($a{keepalive} ? 'keep-alive' : 'close')
        unless $have{connection};

    if ($a{chunked}) {
        push @headers, 'Transfer-Encoding' => 'chunked'
            unless $have{'transfer-encoding'};

    } elsif (!$have{'content-length'} && !$have{'transfer-encoding'}
             && (length $body || $method =~ /^(?:POST|PUT|PATCH)$/))
    {
        push @headers, 'Content-Length' => length $body;
    }

    my $head = "$method $uri $protocol\r\n";
    my @all = (@defaults, @headers);
    for (my $i = 0; $i < @all; $i += 2) {
        $head .= "$all[$i]: $all[$i + 1]\r\n";
    }

    return "$head\r\n";
}

# Encodes pieces as HTTP chunks (empty pieces are skipped: a zero-length
# chunk would end the body); returns the list of chunks and the last-chunk.
sub chunk_pieces {
    my (@pieces) = @_;
    my @out = map { sprintf("%x\r\n", length $_) . "$_\r\n" }
              grep { length } @pieces;
    return (@out, "0\r\n\r\n");
}

# Splits a string in pieces of $size bytes (the whole string if no size).
sub split_body {
    my ($body, $size) = @_;
    return ($body) if !$size || length $body <= $size;
    return unpack("(a$size)*", $body);
}

# Parses one response at the start of $$buf.  Returns:
#   (response, consumed bytes) when complete,
#   ()                          when more data is needed,
#   dies                        when the data is not HTTP.
# With $eof true, a body without length ends at the end of the data.
sub parse_response {
    my ($buf, $is_head, $eof) = @_;

    my $off = 0;

    for (;;) {
        my $end = index($$buf, "\r\n\r\n", $off);
        if ($end < 0) {
            die "not an HTTP response: "
                . _excerpt(substr($$buf, $off)) . "\n"
                if length($$buf) - $off >= 5
                   && substr($$buf, $off, 5) ne 'HTTP/';
            return;
        }

        my $head = substr($$buf, $off, $end - $off);
        my $body_off = $end + 4;
        my ($status_line, @lines) = split /\r\n/, $head;

        my ($version, $status, $reason) =
            $status_line =~ m{^HTTP/(\d+\.\d+) (\d{3})(?: (.*))?$}
            or die "bad status line: " . _excerpt($status_line) . "\n";

        my @list;
        for my $line (@lines) {
            if ($line =~ /^[ \t]/ && @list) {
                $line =~ s/^\s+//;
                $list[-1][1] .= " $line";
                next;
            }
            my ($n, $v) = $line =~ /^([^:]+):[ \t]*(.*?)[ \t]*$/
                or die "bad header line: " . _excerpt($line) . "\n";
            push @list, [ $n, $v ];
        }

        # interim responses (100 Continue): skip them
        if ($status =~ /^1/ && $status != 101) {
            $off = $body_off;
            next;
        }

        my $res = Bayeux::HTTP::Response->new(
            version => $version,
            status => $status + 0,
            reason => $reason // '',
            header_list => \@list,
        );

        my $te = $res->header('Transfer-Encoding') // '';
        my $cl = $res->header('Content-Length');

        if ($is_head || $status == 204 || $status == 304 || $status == 101) {
            $res->{body} = '';
            $res->{raw} = substr($$buf, 0, $body_off);
            return ($res, $body_off);
        }

        if ($te =~ /chunked/i) {
            my $p = $body_off;
            my ($body, @sizes) = ('');
            for (;;) {
                my $nl = index($$buf, "\r\n", $p);
                return if $nl < 0;
                my $line = substr($$buf, $p, $nl - $p);
                my ($hex) = $line =~ /^([0-9a-fA-F]+)/
                    or die "bad chunk size line: " . _excerpt($line) . "\n";
                my $size = hex $hex;
                $p = $nl + 2;
                if ($size == 0) {
                    # trailers, up to an empty line
                    for (;;) {
                        my $tnl = index($$buf, "\r\n", $p);
                        return if $tnl < 0;
                        my $empty = $tnl == $p;
                        $p = $tnl + 2;
                        last if $empty;
                    }
                    last;
                }
                return if length($$buf) < $p + $size + 2;
                $body .= substr($$buf, $p, $size);
                push @sizes, $size;
                $p += $size + 2;
            }
            $res->{body} = $body;
            $res->{chunk_sizes} = \@sizes;
            $res->{raw} = substr($$buf, 0, $p);
            return ($res, $p);
        }

        if (defined $cl) {
            die "bad Content-Length: $cl\n" unless $cl =~ /^\d+$/;
            return if length($$buf) < $body_off + $cl;
            $res->{body} = substr($$buf, $body_off, $cl);
            $res->{raw} = substr($$buf, 0, $body_off + $cl);
            return ($res, $body_off + $cl);
        }

        # the body ends when the server closes the connection
        return unless $eof;
        $res->{body} = substr($$buf, $body_off);
        $res->{raw} = $$buf;
        $res->{close_delimited} = 1;
        return ($res, length $$buf);
    }
}

sub _excerpt {
    my ($s) = @_;
    $s = substr($s, 0, 60) . '...' if length $s > 60;
    $s =~ s/([^\x20-\x7e])/sprintf("\\x%02x", ord $1)/ge;
    return "\"$s\"";
}


package Bayeux::HTTP::Response;

# A parsed response.  Fields (hash keys, also methods): status, version,
# reason, body, raw (the bytes of this response), header_list ([name, value]
# pairs in order), elapsed (seconds from the end of sending the request to
# the end of the response), error (set instead of status when no response
# could be read), timed_out.

use strict;
use warnings;

sub new {
    my ($class, %a) = @_;
    return bless { %a }, $class;
}

for my $f (qw(status version reason body raw header_list elapsed error
              timed_out chunk_sizes close_delimited))
{
    no strict 'refs';
    *$f = sub { $_[0]{$f} };
}

# The value of a header; several headers of one name are joined with ", ".
# undef if absent.
sub header {
    my ($self, $name) = @_;
    my @v = $self->headers($name);
    return @v ? join(', ', @v) : undef;
}

# All values of a header, in order.
sub headers {
    my ($self, $name) = @_;
    return map { $_->[1] } grep { lc $_->[0] eq lc $name }
           @{ $self->{header_list} || [] };
}

sub is_keepalive {
    my ($self) = @_;
    return 0 if $self->{close_delimited};
    my $c = lc($self->header('Connection') // '');
    return 0 if $c =~ /\bclose\b/;
    return $self->{version} eq '1.0' ? ($c =~ /keep-alive/ ? 1 : 0) : 1;
}

# The body decoded as JSON (or JSONP: "callback([...])"); undef if it is not.
sub json {
    my ($self) = @_;
    return $self->{json} if exists $self->{json};
    my $body = $self->{body};
    my $data;
    if (defined $body && length $body) {
        my $text = $body;
        if ($text =~ /^\s*[A-Za-z_\$][\w\$.]*\s*\((.*)\)\s*;?\s*$/s) {
            $text = $1;
        }
        require JSON::PP;
        $data = eval { JSON::PP->new->utf8->allow_nonref->decode($text) };
    }
    return $self->{json} = $data;
}


package Bayeux::HTTP::Connection;

# One client connection.  Non-blocking socket; all waits are bounded by a
# deadline.

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);

# %a: host (127.0.0.1), port, timeout (connect timeout, seconds, 10).
# Dies if the connection cannot be made.
sub new {
    my ($class, %a) = @_;
    croak "port required" unless $a{port};
    my $host = $a{host} // $Bayeux::HTTP::DEFAULT_HOST;

    my $sock = IO::Socket::IP->new(
        PeerHost => $host,
        PeerPort => $a{port},
        Proto => 'tcp',
        Timeout => $a{timeout} // 10,
    ) or die "cannot connect to $host:$a{port}: $@\n";

    setsockopt($sock, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1);
    $sock->blocking(0);
    binmode $sock;

    return bless {
        sock => $sock,
        host => $host,
        port => $a{port},
        buf => '',
        eof => 0,
        sent_at => undef,
        requests => 0,
    }, $class;
}

sub sock { $_[0]{sock} }
sub is_eof { $_[0]{eof} }
sub buffered { $_[0]{buf} }

sub close {
    my ($self) = @_;
    if ($self->{sock}) {
        CORE::close($self->{sock});
        $self->{sock} = undef;
    }
    $self->{eof} = 1;
}

sub is_open { defined $_[0]{sock} && !$_[0]{eof} }

# Writes all bytes before the deadline; dies on error or timeout.
sub write_all {
    my ($self, $data, $deadline) = @_;
    $deadline //= time + 10;
    my $sock = $self->{sock} or die "connection is closed\n";
    my $sel = IO::Select->new($sock);
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (defined $n) {
            $off += $n;
            next;
        }
        die "write failed: $!\n" unless $! == EAGAIN || $! == EWOULDBLOCK
                                        || $! == EINTR;
        my $left = $deadline - time;
        die "timeout while writing\n" if $left <= 0;
        $sel->can_write($left);
    }
    return 1;
}

# Reads what is available, waiting until the deadline for at least one
# byte.  Returns the number of bytes read, 0 at EOF (sets is_eof), undef on
# timeout.  A connection reset counts as EOF (with $self->{error} set).
sub read_some {
    my ($self, $deadline) = @_;
    return 0 if $self->{eof};
    my $sock = $self->{sock};
    my $sel = IO::Select->new($sock);
    for (;;) {
        my $n = sysread($sock, $self->{buf}, 65536, length $self->{buf});
        if (defined $n) {
            $self->{eof} = 1 if $n == 0;
            return $n;
        }
        if ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
            $self->{error} = "read failed: $!";
            $self->{eof} = 1;
            return 0;
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        $sel->can_read($left);
    }
}

# Sends a request (see Bayeux::HTTP::build_head for %a; plus: body,
# chunks => [pieces] to send the body chunked, chunk_delay => seconds
# between writes of chunks, deadline).  Records the time the last byte was
# written, from which read_response measures 'elapsed'.
sub send_request {
    my ($self, %a) = @_;
    my $deadline = $a{deadline} // time + 10;
    my $method = $a{method} // 'GET';
    $self->{last_method} = $method;

    if ($a{chunks}) {
        my $head = Bayeux::HTTP::build_head(%a, chunked => 1);
        my @chunks = Bayeux::HTTP::chunk_pieces(@{ $a{chunks} });
        if ($a{chunk_delay}) {
            $self->write_all($head, $deadline);
            for my $i (0 .. $#chunks) {
                sleep $a{chunk_delay} if $i > 0;
                $self->write_all($chunks[$i], $deadline);
            }
        } else {
            $self->write_all(join('', $head, @chunks), $deadline);
        }

    } else {
        my $head = Bayeux::HTTP::build_head(%a);
        $self->write_all($head . ($a{body} // ''), $deadline);
    }

    $self->{sent_at} = time;
    $self->{requests}++;
    return 1;
}

# Sends bytes as they are; a list of pieces is written with $delay seconds
# between them.
sub send_raw {
    my ($self, $pieces, $delay, $deadline) = @_;
    $deadline //= time + 10;
    $pieces = [ $pieces ] unless ref $pieces;
    for my $i (0 .. $#$pieces) {
        sleep $delay if $i > 0 && $delay;
        $self->write_all($pieces->[$i], $deadline);
    }
    $self->{sent_at} = time;
    $self->{requests}++;
    return 1;
}

# Reads one response.  Returns a Bayeux::HTTP::Response when complete; undef
# if the deadline passes first (what was read stays buffered, so it can be
# called again); a response with 'error' set (and no status) if the
# connection closed or the data was not HTTP.
sub read_response {
    my ($self, $deadline, $is_head) = @_;
    $is_head //= ($self->{last_method} // '') eq 'HEAD';

    for (;;) {
        my ($res, $used) = eval {
            Bayeux::HTTP::parse_response(\$self->{buf}, $is_head, $self->{eof})
        };
        if ($@) {
            my $err = $@;
            chomp $err;
            return $self->_failed($err);
        }
        if ($res) {
            substr($self->{buf}, 0, $used, '');
            $res->{elapsed} = time - ($self->{sent_at} // time);
            $self->close if !$res->is_keepalive || $self->{eof};
            return $res;
        }
        if ($self->{eof}) {
            return $self->_failed($self->{error}
                // (length $self->{buf}
                    ? 'connection closed in the middle of a response'
                    : 'connection closed without a response'));
        }
        return undef unless defined $self->read_some($deadline);
    }
}

sub _failed {
    my ($self, $err) = @_;
    my $res = Bayeux::HTTP::Response->new(
        error => $err,
        raw => $self->{buf},
        body => undef,
        header_list => [],
        elapsed => time - ($self->{sent_at} // time),
    );
    $self->close;
    return $res;
}

# Reads until the server closes the connection or the deadline passes, then
# parses all the responses received.  Returns (list of responses, raw bytes,
# closed flag).
sub read_all {
    my ($self, $deadline) = @_;
    for (;;) {
        my $n = $self->read_some($deadline);
        last if !defined $n || $n == 0;
    }
    my $raw = $self->{buf};
    my $buf = $raw;
    my @res;
    while (length $buf) {
        my ($res, $used) = eval {
            Bayeux::HTTP::parse_response(\$buf, 0, $self->{eof})
        };
        last if $@ || !$res;
        $res->{elapsed} = time - ($self->{sent_at} // time);
        push @res, $res;
        substr($buf, 0, $used, '');
    }
    return (\@res, $raw, $self->{eof});
}

# True if the peer has closed the (idle) connection: a non-blocking check
# used before reusing a keep-alive connection.
sub peer_closed {
    my ($self) = @_;
    return 1 unless $self->{sock};
    return 1 if $self->{eof};
    my $n = $self->read_some(time);
    return 1 if defined $n && $n == 0;
    return 0;
}

sub DESTROY {
    my ($self) = @_;
    CORE::close($self->{sock}) if $self->{sock};
}

1;
