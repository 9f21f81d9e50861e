package Test::Bayeux::Session;

# A Bayeux session over one transport, for tests that send the same
# messages over each: the handshake is made at once, then send() takes
# messages (ids and clientId are added) and returns their replies, in the
# order sent; deliveries that come on a websocket meanwhile are kept in
# $s->{deliveries}.
#
#   my $s = Test::Bayeux::Session->new('websocket', path => '/cometd',
#                                      ext => {...}, cookies => {...},
#                                      headers => [ Name => 'value' ]);
#   $s->handshake;       # its reply
#   $s->client_id;
#   my @replies = $s->send([ { channel => '/meta/subscribe', ... } ]);

use strict;
use warnings;

use JSON::PP;
use Time::HiRes ();
use Bayeux::WebSocket;
use Test::Nginx::Bayeux;


sub new {
    my ($class, $transport, %o) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $path = $o{path} // '/cometd';
    my $self = bless { transport => $transport, id => 100 }, $class;
    my @headers = @{ $o{headers} || [] };

    if ($transport eq 'websocket' && $o{cookies}) {
        push @headers, Cookie => join '; ',
            map { "$_=$o{cookies}{$_}" } sort keys %{ $o{cookies} };
    }

    if ($transport eq 'websocket') {
        my $ws = Bayeux::WebSocket->new(port => $server->port, path => $path);
        $ws->handshake(headers => \@headers) or die 'upgrade: ' . $ws->error;
        $self->{ws} = $ws;
    } else {
        $self->{c} = $server->client(path => $path, headers => \@headers,
                                     cookie_jar => { %{ $o{cookies} || {} } },
                                     connection_type => $transport);
    }

    my ($r) = $self->send([ { channel => '/meta/handshake', version => '1.0',
                              id => 'hs',
                              supportedConnectionTypes => [ $transport ],
                              $o{ext} ? (ext => $o{ext}) : () } ]);
    $self->{handshake} = $r;
    $self->{clientId} = $r->{clientId};
    return $self;
}

sub handshake { $_[0]{handshake} }
sub client_id { $_[0]{clientId} }

sub send {
    my ($self, $msgs) = @_;
    my %want;
    for my $m (@$msgs) {
        $m->{id} //= '' . $self->{id}++;
        $m->{clientId} //= $self->{clientId} if $self->{clientId};
        $want{$m->{id}} = 1;
    }
    my @got;
    if ($self->{ws}) {
        $self->{ws}->send_json($msgs);
        my $deadline = Time::HiRes::time() + 10;
        while (keys %want && Time::HiRes::time() < $deadline) {
            my $in = $self->{ws}->recv_json(timeout => 10) or last;
            for my $m (@$in) {
                if (defined $m->{id} && delete $want{$m->{id}}) {
                    push @got, $m;
                } else {
                    push @{ $self->{deliveries} }, $m;
                }
            }
        }
    } else {
        my $res = $self->{c}->post('/', $msgs,
            $self->{transport} eq 'callback-polling' ? (jsonp => 'cb') : ());
        my $body = $res->body;
        $body =~ s{^/\*\*/cb\((.*)\);?\s*$}{$1}s;
        my $in = JSON::PP::decode_json($body);
        @got = grep { defined $_->{id} && $want{$_->{id}} } @$in;
    }
    # in the order sent
    my %by = map { $_->{id} => $_ } @got;
    return map { $by{$_->{id}} } @$msgs;
}

1;
