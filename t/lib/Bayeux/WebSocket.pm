package Bayeux::WebSocket;

# A small RFC 6455 client for tests: the handshake, masked frames,
# fragments, control frames, and raw bytes for broken frames.
#
#   my $ws = Bayeux::WebSocket->new(port => $port);     # path /cometd
#   my $wss = Bayeux::WebSocket->new(port => $port, tls => 1);  # over TLS
#   (rcvbuf => 4096: a small receive window, the server's writes block)
#   $ws->handshake or die $ws->error;
#   $ws->send_json([ { channel => '/meta/handshake', ... } ]);
#   my $msgs = $ws->recv_json(timeout => 5);            # arrayref
#   my $f = $ws->recv_frame(timeout => 5);               # {opcode, payload}
#   $ws->send_raw($bytes);
#   $ws->reset;          # close with SO_LINGER 0: the kernel sends a RST

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha1_base64);
use IO::Select;
use IO::Socket::IP;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Socket ();
use Time::HiRes qw(time);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

sub new {
    my ($class, %a) = @_;
    croak "port required" unless $a{port};
    my $self = bless { path => '/cometd', host => '127.0.0.1', %a,
                       buf => '', error => undef }, $class;
    return $self;
}

sub error { $_[0]{error} }
sub status { $_[0]{status} }
sub response_headers { $_[0]{headers} }
sub sock { $_[0]{sock} }

# Connects and upgrades.  Options: headers (arrayref of extra pairs),
# key, version (13), protocol.  Returns 1 on 101, else 0 (status() and
# error() tell).
sub handshake {
    my ($self, %o) = @_;
    # rcvbuf: a small receive window, so that the server's writes block
    my @opts = $self->{rcvbuf}
             ? (Sockopts => [ [ Socket::SOL_SOCKET(), Socket::SO_RCVBUF(),
                                $self->{rcvbuf} ] ])
             : ();
    my $sock = IO::Socket::IP->new(PeerHost => $self->{host},
                                   PeerPort => $self->{port},
                                   Proto => 'tcp', Timeout => 5, @opts)
        or do { $self->{error} = "connect: $!"; return 0 };
    $sock->autoflush(1);
    binmode $sock;
    if ($self->{tls}) {
        require IO::Socket::SSL;
        IO::Socket::SSL->start_SSL($sock, SSL_verify_mode => 0)
            or do {
                $self->{error} = 'TLS: ' . IO::Socket::SSL::errstr();
                return 0;
            };
    }
    $self->{sock} = $sock;

    my $key = $o{key} // encode_base64(join('', map { chr int rand 256 }
                                                    1 .. 16), '');
    $self->{key} = $key;
    my @h = (
        "GET $self->{path} HTTP/1.1",
        "Host: $self->{host}:$self->{port}",
        'Upgrade: websocket',
        'Connection: Upgrade',
        "Sec-WebSocket-Key: $key",
        'Sec-WebSocket-Version: ' . ($o{version} // 13),
    );
    push @h, "Sec-WebSocket-Protocol: $o{protocol}" if $o{protocol};
    my @extra = @{ $o{headers} || [] };
    while (my ($k, $v) = splice @extra, 0, 2) {
        push @h, "$k: $v";
    }
    print $sock join("\r\n", @h) . "\r\n\r\n" . ($o{after} // '');

    my $deadline = time + ($o{timeout} // 5);
    until ($self->{buf} =~ /\r\n\r\n/) {
        $self->_read($deadline) or do {
            $self->{error} //= 'no handshake response';
            return 0;
        };
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{buf} = $rest;
    my ($status_line, @lines) = split /\r\n/, $head;
    ($self->{status}) = $status_line =~ m{^HTTP/1\.1 (\d+)};
    my %headers;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $headers{ lc $k } = $v;
    }
    $self->{headers} = \%headers;
    return 0 unless ($self->{status} // 0) == 101;

    my $accept = sha1_base64($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    $accept .= '=' while length($accept) % 4;
    if (($headers{'sec-websocket-accept'} // '') ne $accept) {
        $self->{error} = 'bad Sec-WebSocket-Accept';
        return 0;
    }
    return 1;
}

sub _read {
    my ($self, $deadline) = @_;
    my $sock = $self->{sock} or return 0;
    my $left = $deadline - time;
    return 0 if $left <= 0;
    # TLS: bytes already decrypted are not seen by select()
    unless ($sock->can('pending') && $sock->pending) {
        my $sel = IO::Select->new($sock);
        return 0 unless $sel->can_read($left);
    }
    my $n = sysread($sock, my $chunk, 65536);
    if (!$n) {
        $self->{eof} = 1;
        $self->{error} = defined $n ? 'eof' : "read: $!";
        return 0;
    }
    $self->{buf} .= $chunk;
    return 1;
}

sub eof { $_[0]{eof} }

# A frame as bytes: fin (1), opcode, payload, mask (1), rsv (0),
# len (override the length field, for broken frames).
sub frame {
    my ($class, %f) = @_;
    my $payload = $f{payload} // '';
    my $len = $f{len} // length $payload;
    my $b0 = (($f{fin} // 1) ? 0x80 : 0) | (($f{rsv} // 0) << 4)
             | $f{opcode};
    my $mask = $f{mask} // 1;
    my $out = chr $b0;
    my $m = $mask ? 0x80 : 0;
    if ($len < 126) {
        $out .= chr($m | $len);
    } elsif ($len < 65536) {
        $out .= chr($m | 126) . pack('n', $len);
    } else {
        $out .= chr($m | 127) . pack('Q>', $len);
    }
    if ($mask) {
        my $key = join '', map { chr int rand 256 } 1 .. 4;
        my $masked = $payload ^ substr($key x (int(length($payload) / 4) + 1),
                                       0, length $payload);
        $out .= $key . $masked;
    } else {
        $out .= $payload;
    }
    return $out;
}

sub send_raw {
    my ($self, $bytes) = @_;
    my $sock = $self->{sock} or return 0;
    local $SIG{PIPE} = 'IGNORE';
    return print $sock $bytes;
}

sub send_frame {
    my ($self, %f) = @_;
    return $self->send_raw(ref($self)->frame(%f));
}

sub send_text {
    my ($self, $text) = @_;
    return $self->send_frame(opcode => 1, payload => $text);
}

sub send_json {
    my ($self, $data) = @_;
    return $self->send_text($JSON->encode($data));
}

# The next frame: { opcode, fin, payload } or undef (timeout, eof).
sub recv_frame {
    my ($self, %o) = @_;
    my $deadline = time + ($o{timeout} // 5);
    for (;;) {
        my $f = $self->_parse;
        return $f if $f;
        $self->_read($deadline) or return undef;
    }
}

sub _parse {
    my ($self) = @_;
    my $b = $self->{buf};
    return undef if length $b < 2;
    my ($b0, $b1) = unpack 'CC', $b;
    my $len = $b1 & 0x7f;
    my $hl = 2;
    if ($len == 126) {
        return undef if length $b < 4;
        $len = unpack 'n', substr($b, 2, 2);
        $hl = 4;
    } elsif ($len == 127) {
        return undef if length $b < 10;
        $len = unpack 'Q>', substr($b, 2, 8);
        $hl = 10;
    }
    return undef if length $b < $hl + $len;
    my $f = { fin => ($b0 & 0x80) ? 1 : 0, opcode => $b0 & 0x0f,
              masked => ($b1 & 0x80) ? 1 : 0,
              payload => substr($b, $hl, $len) };
    substr($self->{buf}, 0, $hl + $len, '');
    if ($f->{opcode} == 8 && length $f->{payload} >= 2) {
        $f->{code} = unpack 'n', substr($f->{payload}, 0, 2);
        $f->{reason} = substr($f->{payload}, 2);
    }
    return $f;
}

# The next text message, decoded: an arrayref of Bayeux messages, or undef.
sub recv_json {
    my ($self, %o) = @_;
    my $deadline = time + ($o{timeout} // 5);
    for (;;) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        my $f = $self->recv_frame(timeout => $left) or return undef;
        next unless $f->{opcode} == 1;
        my $j = eval { $JSON->decode($f->{payload}) };
        return $j;
    }
}

sub close {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{sock} = undef;
}

# Closes at once with a RST instead of a FIN (SO_LINGER on, time 0):
# what the server writes afterwards fails.
sub reset {
    my ($self) = @_;
    my $sock = $self->{sock} or return;
    setsockopt($sock, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
               pack('ii', 1, 0));
    CORE::close($sock);
    $self->{sock} = undef;
}

1;
