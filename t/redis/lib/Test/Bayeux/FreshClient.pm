package Test::Bayeux::FreshClient;

# A Bayeux::Client (t/lib) that sends every request on a new connection,
# so that with several workers (or several servers) the requests of one
# session land on different processes.  Options besides Bayeux::Client's:
#
#   ports => [p1, p2, ...]   servers to use in turn, one request each
#                            (default: [port])
#
# served() lists, per request, "port/worker pid" as told by the response
# header X-Worker (add "add_header X-Worker $pid always;" to the location).

use strict;
use warnings;

use Bayeux::Client;

our @ISA = ('Bayeux::Client');

sub new {
    my ($class, %a) = @_;
    my $ports = delete $a{ports};
    $a{port} //= $ports->[0] if $ports;
    my $self = Bayeux::Client::new($class, %a);
    $self->{ports} = $ports || [ $self->{port} ];
    $self->{turn} = 0;
    $self->{served} = [];
    return $self;
}

sub _conn {
    my ($self, %o) = @_;
    # idle connections are closed: nothing is reused
    for my $c (@{ $self->{conns} }) {
        $c->close unless $c->{busy};
    }
    @{ $self->{conns} } = grep { $_->{busy} && $_->is_open }
                          @{ $self->{conns} };
    $self->{port} = $self->{ports}[ $self->{turn}++ % @{ $self->{ports} } ];
    my $c = $self->SUPER::_conn(%o, new_connection => 1);
    $c->{fresh_port} = $self->{port};
    return $c;
}

sub request_start {
    my ($self, %o) = @_;
    my $h = $self->SUPER::request_start(%o);
    $h->{fresh_port} = $h->{conn}{fresh_port};
    return $h;
}

sub request_finish {
    my ($self, $h, %o) = @_;
    my $res = $self->SUPER::request_finish($h, %o);
    if (!$res->timed_out && !$h->{fresh_noted}++) {
        push @{ $self->{served} },
            ($h->{fresh_port} // '?') . '/' . ($res->header('X-Worker') // '?');
    }
    return $res;
}

sub served { @{ $_[0]{served} } }

# The port the next request goes to.
sub next_port {
    my ($self) = @_;
    return $self->{ports}[ $self->{turn} % @{ $self->{ports} } ];
}

1;
