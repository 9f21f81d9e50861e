package Test::Bayeux::App;

# A small application server for tests of the subrequests to the
# application (bayeux_handshake_request): HTTP/1.x on a loopback port, one
# forked process per connection, core Perl only.  The test says how each
# path answers, and reads back every request the server got.
#
#   my $app = Test::Bayeux::App->new;              # listens at once
#   $app->port;
#   $app->answer('/_app/handshake', status => 403, body => 'no',
#                 delay => 2,                      # seconds before answering
#                 garbage => "\x00\x01 not http"); # sent instead of HTTP
#   $app->answer('/_app/handshake', status => 200, when => 'slow',
#                 delay => 2);    # only for requests whose body has "slow"
#   $app->requests;     # [ { method, path, headers => { lc name => value },
#                       #     body, json }, ... ] in the order they came
#   $app->clear;        # forgets the requests and the answers
#   $app->stop;         # also when the object goes
#
# A path with no answer gets 200 and an empty body.

use strict;
use warnings;

use IO::Socket::INET;
use File::Temp qw(tempdir);
use Fcntl qw(:flock);
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);

my $json = JSON::PP->new->canonical;

sub new {
    my ($class, %opts) = @_;

    my $self = bless { dir => tempdir(CLEANUP => 1) }, $class;

    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => $opts{port} || 0,
                                       Listen => 64, ReuseAddr => 1)
        or die "Test::Bayeux::App: listen: $!";

    $self->{port} = $listen->sockport;
    $self->clear;

    my $pid = fork;
    die "Test::Bayeux::App: fork: $!" unless defined $pid;

    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        $SIG{TERM} = sub { POSIX::_exit(0) };
        while (1) {
            my $c = $listen->accept or next;
            my $child = fork;
            if (defined $child && $child == 0) {
                close $listen;
                eval { $self->_serve($c) };
                POSIX::_exit(0);
            }
            close $c;
        }
    }

    close $listen;
    $self->{pid} = $pid;

    return $self;
}

sub port { $_[0]{port} }

sub answer {
    my ($self, $path, %answer) = @_;
    my $rules = $self->_read_json('answers') || {};
    my $list = $rules->{$path} ||= [];
    @$list = grep { ($_->{when} // '') ne ($answer{when} // '') } @$list;
    # the rules with a condition first
    if (defined $answer{when}) { unshift @$list, \%answer }
    else { push @$list, \%answer }
    $self->_write_json('answers', $rules);
}

sub requests {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/requests" or return [];
    flock $fh, LOCK_SH;
    my @r = map { $json->decode($_) } grep { /\S/ } <$fh>;
    close $fh;
    for my $r (@r) {
        $r->{json} = eval { $json->decode($r->{body}) };
    }
    return \@r;
}

sub clear {
    my ($self) = @_;
    $self->_write_json('answers', {});
    open my $fh, '>', "$self->{dir}/requests" or die $!;
    close $fh;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if $self->{pid} && $self->{pid} != $$;
}

sub _serve {
    my ($self, $c) = @_;

    local $/ = "\r\n";
    my $line = <$c>;
    return unless defined $line;
    $line =~ s/\r?\n$//;
    my ($method, $target) = split / /, $line;

    my (%headers, $len);
    while (defined(my $h = <$c>)) {
        $h =~ s/\r?\n$//;
        last if $h eq '';
        my ($name, $value) = split /:\s*/, $h, 2;
        $name = lc $name;
        $headers{$name} = exists $headers{$name}
                          ? "$headers{$name}, $value" : $value;
    }

    my $body = '';
    if (my $n = $headers{'content-length'}) {
        read($c, $body, $n);
    }

    (my $path = $target) =~ s/\?.*//;

    my $record = $json->encode({ method => $method, path => $path,
                                 target => $target, headers => \%headers,
                                 body => $body });
    open my $fh, '>>', "$self->{dir}/requests" or die $!;
    flock $fh, LOCK_EX;
    print $fh "$record\n";
    close $fh;

    my $rules = $self->_read_json('answers') || {};
    my ($answer) = grep { !defined $_->{when} || index($body, $_->{when}) >= 0 }
                   @{ $rules->{$path} || [] };
    $answer ||= { status => 200 };

    sleep $answer->{delay} if $answer->{delay};

    if (defined $answer->{garbage}) {
        print $c $answer->{garbage};
        close $c;
        return;
    }

    my $out = $answer->{body} // '';
    my $status = $answer->{status} // 200;
    print $c "HTTP/1.1 $status Test\r\nContent-Type: text/plain\r\n"
             . "Content-Length: " . length($out) . "\r\n"
             . "Connection: close\r\n\r\n$out";
    close $c;
}

sub _read_json {
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{dir}/$name" or return undef;
    flock $fh, LOCK_SH;
    local $/;
    my $text = <$fh>;
    close $fh;
    return length $text ? $json->decode($text) : undef;
}

sub _write_json {
    my ($self, $name, $value) = @_;
    my $tmp = "$self->{dir}/$name.tmp";
    open my $fh, '>', $tmp or die $!;
    print $fh $json->encode($value);
    close $fh;
    rename $tmp, "$self->{dir}/$name" or die $!;
}

1;
