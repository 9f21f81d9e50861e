package Test::Bayeux::StallProxy;

# A TCP proxy on a loopback port of its own, in a child process, between
# nginx and a Redis: it passes everything through, and on demand holds
# back what Redis sends on the connections that subscribed (a SUBSCRIBE
# or SSUBSCRIBE command went through them: the engine's notification
# connections), to let it through a message at a time or all at once.
# That delays the stream to a worker behind its command connection, as a
# Redis that pauses between writing a publish's reply and its message
# would.
#
#   my $proxy = Test::Bayeux::StallProxy->new($redis->port);
#   ... bayeux_redis_url redis://127.0.0.1:<$proxy->port>/0 ...
#   $proxy->stall;        # from now on, held back
#   $proxy->held;         # how many whole messages are held back
#   $proxy->release(1);   # the first one goes through, the rest stay
#   $proxy->resume;       # all of them go through, and what follows
#   $proxy->drop;         # every connection closed, what is held lost
#
# Each call is answered by the child over a socket pair once it is done,
# so that a test knows the proxy has applied it.

use strict;
use warnings;

use IO::Select;
use IO::Socket::IP;
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);

use Test::Nginx::Bayeux::Server;

sub new {
    my ($class, $to) = @_;
    my $port = Test::Nginx::Bayeux::Server::free_port();
    my $listen = IO::Socket::IP->new(LocalHost => '127.0.0.1',
                                     LocalPort => $port, Listen => 16,
                                     ReuseAddr => 1)
        or die "proxy listen on $port: $!";
    socketpair(my $parent, my $child, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
        or die "socketpair: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $parent;
        # (never the test's END blocks in the child)
        eval { _run($listen, $child, $to) };
        POSIX::_exit(0);
    }
    close $child;
    close $listen;
    $parent->autoflush(1);
    return bless { pid => $pid, port => $port, ctl => $parent }, $class;
}

sub port { $_[0]{port} }

sub stall { $_[0]->_tell('stall') }
sub resume { $_[0]->_tell('resume') }
sub held { $_[0]->_tell('held') }
sub release { $_[0]->_tell("release $_[1]") }
sub drop { $_[0]->_tell('drop') }

sub _tell {
    my ($self, $what) = @_;
    my $ctl = $self->{ctl};
    print {$ctl} "$what\n";
    my $answer = <$ctl>;
    die "the proxy did not answer '$what'" unless defined $answer;
    chomp $answer;
    return $answer;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop }

# The child: each accepted connection is a pair (client, server); what
# one side sends is written to the other, except that while stalled what
# a subscribed pair's server sends is kept in $held{server} instead.
sub _run {
    my ($listen, $ctl, $to) = @_;
    my (%peer, %subscribed, %is_server, %held);
    my $stalled = 0;
    my $sel = IO::Select->new($listen, $ctl);

    for (;;) {
        for my $fh ($sel->can_read(0.05)) {
            if ($fh == $listen) {
                my $c = $listen->accept or next;
                my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                            PeerPort => $to)
                    or do { close $c; next };
                $peer{$c} = $s;
                $peer{$s} = $c;
                $is_server{$s} = 1;
                $sel->add($c, $s);
                next;
            }
            if ($fh == $ctl) {
                my $line = <$ctl>;
                return unless defined $line;
                if ($line =~ /^drop/) {
                    $sel->remove($_), close $_
                        for grep { $_ != $listen && $_ != $ctl }
                            $sel->handles;
                    %peer = %subscribed = %is_server = %held = ();
                    $stalled = 0;
                    print {$ctl} "ok\n";
                    $ctl->flush;
                    next;
                }
                print {$ctl} _control($line, \$stalled, \%held, \%peer),
                              "\n";
                $ctl->flush;
                next;
            }
            my $to_fh = $peer{$fh} or next;   # (closed by a drop)
            my $n = sysread($fh, my $buf, 65536);
            if (!$n) {
                $sel->remove($fh, $to_fh);
                delete @peer{$fh, $to_fh};
                delete @subscribed{$fh, $to_fh};
                delete @is_server{$fh, $to_fh};
                delete @held{$fh, $to_fh};
                close $fh;
                close $to_fh;
                next;
            }
            if (!$is_server{$fh}
                && $buf =~ /(?:\A|\r\n)\*\d+\r\n\$\d+\r\nS?SUBSCRIBE\r\n/i)
            {
                $subscribed{$to_fh} = 1;
            }
            if ($stalled && $subscribed{$fh}) {
                $held{$fh} .= $buf;
                next;
            }
            _write_all($to_fh, $buf);
        }
    }
}

# a control line: its answer
sub _control {
    my ($line, $stalled, $held, $peer) = @_;
    if ($line =~ /^stall/) {
        $$stalled = 1;
        return 'ok';
    }
    my @servers = keys %$held;          # (subscribed ones only)
    if ($line =~ /^held/) {
        my $n = 0;
        for my $s (@servers) {
            my $b = $held->{$s};
            while (defined(my $len = _message_len($b))) {
                $n++;
                substr($b, 0, $len, '');
            }
        }
        return $n;
    }
    my $n = $line =~ /^release (\d+)/ ? $1 : undef;
    $$stalled = 0 unless defined $n;
    for my $s (@servers) {
        my $out = '';
        if (defined $n) {
            while ($n > 0 && defined(my $len = _message_len($held->{$s}))) {
                $out .= substr($held->{$s}, 0, $len, '');
                $n--;
            }
        } else {
            $out = delete $held->{$s};
        }
        _write_all($peer->{$s}, $out) if length $out;
    }
    return 'ok';
}

# the length of the first whole RESP message of $b (an array of bulk
# strings and simple values, as a published message is, or a simple
# one), undef if $b does not start with a whole one
sub _message_len {
    my ($b) = @_;
    return undef unless defined $b && length $b;
    if ($b =~ /\A[*>](\d+)\r\n/) {
        my ($n, $pos) = ($1, $+[0]);
        for (1 .. $n) {
            pos($b) = $pos;
            if ($b =~ /\G\$(\d+)\r\n/gc) {
                $pos = pos($b) + $1 + 2;
            } elsif ($b =~ /\G[:+-][^\r]*\r\n/gc) {
                $pos = pos($b);
            } else {
                return undef;
            }
            return undef if $pos > length $b;
        }
        return $pos;
    }
    return _line_len($b, 0);
}

sub _line_len {
    my ($b, $from) = @_;
    my $i = index($b, "\r\n", $from);
    return $i < 0 ? undef : $i + 2;
}

sub _write_all {
    my ($fh, $buf) = @_;
    while (length $buf) {
        my $w = syswrite($fh, $buf);
        return unless defined $w;
        substr($buf, 0, $w, '');
    }
}

1;
