package Bayeux::Client;

# A small synchronous-with-timeouts Bayeux 1.0 long-polling client for
# tests.  Raw sockets (Bayeux::HTTP), HTTP/1.1 keep-alive, several
# connections per client (a held /meta/connect on one, publishes on
# another), JSON::PP.  See t/README.md for a conversation example.
#
#   my $c = Bayeux::Client->new(port => $port);          # path /cometd
#   $c->handshake;                       # sets $c->client_id
#   $c->subscribe('/foo');
#   my $h = $c->connect_start;           # held /meta/connect
#   $other->publish('/foo', { text => 'hi' });
#   my $r = $c->connect_finish($h, timeout => 5);
#   is $r->{deliveries}[0]{data}{text}, 'hi';
#   cmp_ok $r->{elapsed}, '<', 1;

use strict;
use warnings;

use Carp qw(croak);
use IO::Select;
use JSON::PP ();
use Time::HiRes qw(time sleep);

use Bayeux::HTTP;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

# Options: port (required), host (127.0.0.1), path ('/cometd'),
# timeout (default seconds to wait for a response: 10), headers (arrayref of
# extra header pairs for every request), cookies (1: keep a cookie jar),
# cookie_jar (a hashref to share a "browser" between clients),
# connection_type ('long-polling'), version ('1.0').
sub new {
    my ($class, %a) = @_;
    croak "port required" unless $a{port};
    my $self = bless {
        host => '127.0.0.1',
        path => '/cometd',
        timeout => 10,
        headers => [],
        cookies => 1,
        connection_type => 'long-polling',
        version => '1.0',
        %a,
        client_id => undef,
        advice => undef,
        conns => [],
        deliveries => [],
        next_id => 1,
        last_response => undef,
    }, $class;
    $self->{cookie_jar} //= {};
    $self->{path} =~ s{/+$}{};
    return $self;
}

for my $f (qw(port host path advice cookie_jar last_response timeout)) {
    no strict 'refs';
    *$f = sub { $_[0]{$f} };
}

# The clientId (set by a successful handshake); can be set, e.g. to reuse a
# session from another client object or to send a bogus one.
sub client_id {
    my $self = shift;
    $self->{client_id} = shift if @_;
    return $self->{client_id};
}

sub next_id { my ($self) = @_; return '' . $self->{next_id}++ }

sub encode_json { $JSON->encode($_[1]) }
sub decode_json { $JSON->decode($_[1]) }

#
# Connections
#

# An idle open connection, or a new one.  new_connection => 1 forces a new
# one.
sub _conn {
    my ($self, %o) = @_;
    unless ($o{new_connection}) {
        for my $c (@{ $self->{conns} }) {
            next if $c->{busy};
            if ($c->peer_closed) {
                $c->close;
                next;
            }
            return $c;
        }
    }
    @{ $self->{conns} } = grep { $_->is_open } @{ $self->{conns} };
    my $c = Bayeux::HTTP::Connection->new(host => $self->{host},
                                          port => $self->{port},
                                          timeout => $self->{timeout});
    push @{ $self->{conns} }, $c;
    return $c;
}

# Number of open connections (idle or busy).
sub connections {
    my ($self) = @_;
    return scalar grep { $_->is_open } @{ $self->{conns} };
}

# Closes every connection (pending requests are abandoned).
sub close {
    my ($self) = @_;
    $_->close for @{ $self->{conns} };
    $self->{conns} = [];
}

#
# Raw HTTP
#

# Starts a request and returns a handle without waiting for the response.
# Options:
#   method (POST), uri (full path) or suffix (appended to path, e.g.
#   '/handshake'), headers (arrayref of pairs), body (bytes),
#   content_type, chunked (1: send the body as one chunk, N: chunks of N
#   bytes, arrayref: these pieces), chunk_delay (seconds between chunks),
#   close (send Connection: close), new_connection (do not reuse an idle
#   connection), protocol (HTTP/1.1).
sub request_start {
    my ($self, %o) = @_;
    my $conn = eval { $self->_conn(new_connection => $o{new_connection}) };
    unless ($conn) {
        # no connection (server down...): a handle that is done, with the
        # error in its response
        my $err = $@;
        chomp $err;
        my $res = Bayeux::HTTP::Response->new(error => $err,
                                              header_list => []);
        $self->{last_response} = $res;
        return bless { client => $self, conn => undef, done => $res,
                       method => $o{method} // 'POST', started => time },
                     'Bayeux::Client::Handle';
    }

    my $uri = $o{uri} // $self->{path} . ($o{suffix} // '');
    my @headers = (@{ $self->{headers} }, @{ $o{headers} || [] });
    push @headers, 'Content-Type' => $o{content_type} if $o{content_type};
    if ($self->{cookies} && %{ $self->{cookie_jar} }
        && !grep { lc $_ eq 'cookie' } @headers[ grep { !($_ % 2) }
                                                  0 .. $#headers ])
    {
        my $jar = $self->{cookie_jar};
        push @headers, Cookie => join('; ',
            map { "$_=$jar->{$_}" } sort keys %$jar);
    }

    my $body = $o{body} // '';
    my $chunks;
    if (my $ch = $o{chunked}) {
        $chunks = ref $ch eq 'ARRAY' ? $ch
                : [ Bayeux::HTTP::split_body($body, $ch == 1 ? 0 : $ch) ];
        $body = '';
    }

    my $deadline = time + ($o{timeout} // $self->{timeout});
    $conn->{busy} = 1;
    my $ok = eval {
        $conn->send_request(
            method => $o{method} // 'POST',
            uri => $uri,
            protocol => $o{protocol},
            host => "$self->{host}:$self->{port}",
            keepalive => !$o{close},
            headers => \@headers,
            body => $body,
            chunks => $chunks,
            chunk_delay => $o{chunk_delay},
            deadline => $deadline,
        );
        1;
    };
    my $h = bless {
        client => $self,
        conn => $conn,
        method => $o{method} // 'POST',
        uri => $uri,
        started => time,
        done => undef,
    }, 'Bayeux::Client::Handle';
    unless ($ok) {
        my $err = $@;
        chomp $err;
        $conn->close;
        $conn->{busy} = 0;
        $h->{done} = Bayeux::HTTP::Response->new(error => $err,
                                                 header_list => []);
    }
    return $h;
}

# Waits for the response of a handle.  Returns a Bayeux::HTTP::Response
# (status, headers, body, json, elapsed...).  If the timeout passes first,
# returns a response with timed_out => 1 and elapsed, and the handle stays
# pending: call again to keep waiting, or abandon() it.  timeout => 0 polls.
sub request_finish {
    my ($self, $h, %o) = @_;
    return $h->{done} if $h->{done};
    my $timeout = $o{timeout} // $self->{timeout};
    my $res = $h->{conn}->read_response(time + $timeout,
                                        $h->{method} eq 'HEAD');
    unless ($res) {
        return Bayeux::HTTP::Response->new(
            timed_out => 1, header_list => [],
            error => "timeout after $timeout s",
            elapsed => time - ($h->{conn}{sent_at} // $h->{started}));
    }
    $h->{conn}{busy} = 0;
    $h->{done} = $res;
    $self->_take_cookies($res);
    $self->{last_response} = $res;
    return $res;
}

# Gives up a pending request: closes its connection.
sub abandon {
    my ($self, $h) = @_;
    return if $h->{done};
    $h->{conn}->close;
    $h->{conn}{busy} = 0;
    $h->{done} = Bayeux::HTTP::Response->new(error => 'abandoned',
                                             header_list => []);
}

# A request and its response (request_start + request_finish).
sub request {
    my ($self, %o) = @_;
    my $h = $self->request_start(%o);
    return $self->request_finish($h, timeout => $o{timeout});
}

sub _take_cookies {
    my ($self, $res) = @_;
    return unless $self->{cookies};
    for my $sc ($res->headers('Set-Cookie')) {
        my ($n, $v) = $sc =~ /^\s*([^=;\s]+)=([^;]*)/ or next;
        if ($sc =~ /max-age=0\b|expires=Thu, 01 Jan 1970/i) {
            delete $self->{cookie_jar}{$n};
        } else {
            $self->{cookie_jar}{$n} = $v;
        }
    }
}

#
# Bayeux messages
#

# Fills in an id on messages (hashes) that have none; returns the list.
sub _prepare {
    my ($self, $messages) = @_;
    $messages = [ $messages ] if ref $messages eq 'HASH';
    for my $m (@$messages) {
        $m->{id} //= $self->next_id if ref $m eq 'HASH' && !$self->{no_ids};
    }
    return $messages;
}

# Posts messages (an arrayref of hashes, or a hash) to path . $suffix and
# returns the response, whose {messages} is the decoded reply array (undef if
# the body is not JSON).  In list context: (status, messages, body,
# response).  Options, besides those of request_start:
#   form => 1       send "message=<url-encoded JSON>" as
#                   application/x-www-form-urlencoded
#   raw_body => ... send this body instead of encoding $messages
#   content_type    (default application/json;charset=UTF-8)
#   jsonp => 'cb'   callback-polling: GET ...?jsonp=cb&message=<JSON>; the
#                   reply "cb([...])" is decoded like JSON
# Replies are remembered (advice) and deliveries collected (see
# deliveries()).
sub post {
    my ($self, $suffix, $messages, %o) = @_;
    my $h = $self->post_start($suffix, $messages, %o);
    my $res = $self->post_finish($h, timeout => $o{timeout});
    return wantarray
        ? ($res->status, $res->{messages}, $res->body, $res)
        : $res;
}

sub post_start {
    my ($self, $suffix, $messages, %o) = @_;
    my $body;
    my $ct = $o{content_type};
    if (exists $o{raw_body}) {
        $body = $o{raw_body};
        $ct //= 'application/json;charset=UTF-8';
    } elsif ($o{form}) {
        $body = 'message=' . _uri_escape(
            $JSON->encode($self->_prepare($messages)));
        $ct //= 'application/x-www-form-urlencoded';
    } else {
        $body = $JSON->encode($self->_prepare($messages));
        $ct //= 'application/json;charset=UTF-8';
    }
    if (defined(my $cb = $o{jsonp})) {
        # callback-polling: GET <path><suffix>?jsonp=<cb>&message=<json>
        my $uri = ($o{uri} // $self->{path} . ($suffix // ''))
                . '?jsonp=' . _uri_escape($cb) . '&message='
                . _uri_escape($JSON->encode($self->_prepare($messages)));
        delete @o{qw(raw_body form content_type jsonp)};
        return $self->request_start(method => 'GET', %o, uri => $uri);
    }
    delete @o{qw(raw_body form content_type)};
    return $self->request_start(%o, suffix => $suffix // '', body => $body,
                                content_type => $ct);
}

sub post_finish {
    my ($self, $h, %o) = @_;
    my $res = $self->request_finish($h, %o);
    return $res if $res->timed_out || $res->{messages_seen}++;
    my $json = $res->json;
    $res->{messages} = ref $json eq 'ARRAY' ? $json
                     : ref $json eq 'HASH' ? [ $json ] : undef;
    $self->_note_messages($res->{messages}) if $res->{messages};
    return $res;
}

sub _uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf("%%%02X", ord $1)/ge;
    return $s;
}

# Remembers advice, collects deliveries (messages with data on non-meta
# channels).
sub _note_messages {
    my ($self, $messages) = @_;
    for my $m (@$messages) {
        next unless ref $m eq 'HASH';
        $self->{advice} = $m->{advice} if $m->{advice};
        if (_is_delivery($m)) {
            push @{ $self->{deliveries} }, $m;
        }
    }
}

sub _is_delivery {
    my ($m) = @_;
    my $ch = $m->{channel} // return 0;
    return 0 if $ch =~ m{^/meta/};
    return exists $m->{data} && !exists $m->{successful};
}

# The reply to message $id (else the first reply on $channel) in a
# response; deliveries (which may carry the same id) are not replies.
sub _reply {
    my ($res, $id, $channel) = @_;
    my $msgs = $res->{messages} || return undef;
    my @replies = grep { ref $_ eq 'HASH' && !_is_delivery($_) } @$msgs;
    for my $m (@replies) {
        return $m if defined $id && defined $m->{id} && $m->{id} eq $id
                     && (!defined $channel
                         || ($m->{channel} // '') eq $channel);
    }
    for my $m (@replies) {
        return $m if defined $channel && ($m->{channel} // '') eq $channel;
    }
    return undef;
}

# /meta/handshake to path/handshake.  %extra is merged into the message
# (ext, supportedConnectionTypes, ...).  Returns the reply (a hash; undef
# if none), and sets client_id on success.
sub handshake {
    my ($self, %extra) = @_;
    my $opts = delete $extra{_opts} || {};
    my $m = {
        channel => '/meta/handshake',
        version => $self->{version},
        minimumVersion => '1.0',
        supportedConnectionTypes => [ $self->{connection_type} ],
        %extra,
    };
    my $res = $self->post('/handshake', [ $m ], %$opts);
    my $r = _reply($res, $m->{id}, '/meta/handshake');
    if ($r && $r->{successful} && $r->{clientId}) {
        $self->{client_id} = $r->{clientId};
    }
    return $r;
}

# Starts a /meta/connect (to path/connect) and returns a handle at once.
# %extra is merged into the message (advice => {timeout => 0}, ext, ...);
# _opts => {...} are request options (chunked, form, headers...).
sub connect_start {
    my ($self, %extra) = @_;
    my $opts = delete $extra{_opts} || {};
    my $m = {
        channel => '/meta/connect',
        clientId => $self->{client_id},
        connectionType => $self->{connection_type},
        %extra,
    };
    my $h = $self->post_start('/connect', [ $m ], %$opts);
    $h->{connect_id} = $m->{id};
    return $h;
}

# Waits for a /meta/connect started with connect_start.  Returns a hash:
#   status      HTTP status (undef on timeout or error)
#   messages    all messages of the response (arrayref; [] if none)
#   reply       the /meta/connect reply
#   deliveries  the other messages with data (also added to deliveries())
#   elapsed     seconds from sending the request to the complete response
#   timed_out   true if the timeout passed (the handle is still pending)
#   error       why no response was read
#   response    the Bayeux::HTTP::Response
sub connect_finish {
    my ($self, $h, %o) = @_;
    my $res = $self->post_finish($h, timeout => $o{timeout});
    my $msgs = $res->{messages} || [];
    return {
        status => $res->status,
        messages => $msgs,
        reply => _reply($res, $h->{connect_id}, '/meta/connect'),
        deliveries => [ grep { _is_delivery($_) } @$msgs ],
        elapsed => $res->elapsed,
        timed_out => $res->timed_out ? 1 : 0,
        error => $res->error,
        response => $res,
    };
}

# connect_start + connect_finish.  timeout => s is how long to wait; the
# rest is merged into the message.
sub connect {
    my ($self, %extra) = @_;
    my $timeout = delete $extra{timeout};
    my $h = $self->connect_start(%extra);
    return $self->connect_finish($h, timeout => $timeout);
}

# Subscribes to channels; one message per channel, in one batch.  A hashref
# as the last argument is merged into every message (ext, ...).  Returns the
# first reply in scalar context, all the replies in list context.
sub subscribe {
    my ($self, @channels) = @_;
    return $self->_subscription('/meta/subscribe', @channels);
}

sub unsubscribe {
    my ($self, @channels) = @_;
    return $self->_subscription('/meta/unsubscribe', @channels);
}

sub _subscription {
    my ($self, $meta, @channels) = @_;
    my $extra = ref $channels[-1] eq 'HASH' ? pop @channels : {};
    my @msgs = map {
        { channel => $meta, clientId => $self->{client_id},
          subscription => $_, %$extra }
    } @channels;
    my $res = $self->post('/', \@msgs);
    my @replies = map { _reply($res, $_->{id}, $meta) } @msgs;
    return wantarray ? @replies : $replies[0];
}

# Publishes $data on $channel.  %extra is merged into the message (id, ext,
# ...).  Returns the publish reply (undef if the server sent none).
# Deliveries in the same response are collected.
sub publish {
    my ($self, $channel, $data, %extra) = @_;
    return $self->publish_finish($self->publish_start($channel, $data,
                                                      %extra));
}

# publish() in two halves, as connect_start and connect_finish: a handle at
# once (_opts => {...} are request options: new_connection...), then the
# reply.
sub publish_start {
    my ($self, $channel, $data, %extra) = @_;
    my $opts = delete $extra{_opts} || {};
    my $m = {
        channel => $channel,
        clientId => $self->{client_id},
        data => $data,
        %extra,
    };
    delete $m->{clientId} unless defined $m->{clientId};
    my $h = $self->post_start('/', [ $m ], %$opts);
    @$h{qw(publish_id publish_channel)} = ($m->{id}, $channel);
    return $h;
}

sub publish_finish {
    my ($self, $h, %o) = @_;
    my $res = $self->post_finish($h, timeout => $o{timeout});
    return _reply($res, $h->{publish_id}, $h->{publish_channel});
}

# /meta/disconnect to path/disconnect.  Returns the reply.
sub disconnect {
    my ($self, %extra) = @_;
    my $m = {
        channel => '/meta/disconnect',
        clientId => $self->{client_id},
        %extra,
    };
    my $res = $self->post('/disconnect', [ $m ]);
    return _reply($res, $m->{id}, '/meta/disconnect');
}

# The deliveries collected so far (from any response), oldest first; they
# are removed from the client.  With a channel: only those (the others
# stay).
sub deliveries {
    my ($self, $channel) = @_;
    my @all = @{ $self->{deliveries} };
    if (defined $channel) {
        my @take = grep { $_->{channel} eq $channel } @all;
        $self->{deliveries} = [ grep { $_->{channel} ne $channel } @all ];
        return \@take;
    }
    $self->{deliveries} = [];
    return \@all;
}

# Waits for deliveries: sends /meta/connect requests until at least
# $o{count} (1) deliveries (on $o{channel}, if given) have been collected or
# $o{timeout} (5 s) passed.  Returns them (taken, as deliveries() does).
sub wait_deliveries {
    my ($self, %o) = @_;
    my $count = $o{count} // 1;
    my $deadline = time + ($o{timeout} // 5);
    my $have = sub {
        scalar grep { !defined $o{channel} || $_->{channel} eq $o{channel} }
               @{ $self->{deliveries} };
    };
    while ($have->() < $count) {
        my $left = $deadline - time;
        last if $left <= 0;
        my $h = $self->connect_start;
        my $r = $self->connect_finish($h, timeout => $left);
        if ($r->{timed_out}) {
            $self->abandon($h);
            last;
        }
        last unless defined $r->{status};
        last if $r->{reply} && !$r->{reply}{successful};
    }
    return $self->deliveries($o{channel});
}

# Waits for the first of several handles (of any clients) to complete.
# Returns the handle, or undef if none completed within the timeout.
sub wait_any {
    my ($class_or_self, $timeout, @handles) = @_;
    my $deadline = time + $timeout;
    for (;;) {
        for my $h (@handles) {
            return $h if $h->ready;
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        my $sel = IO::Select->new(grep { $_ }
                                  map { $_->{conn} ? $_->{conn}->sock : () }
                                  @handles);
        return undef unless $sel->count;
        $sel->can_read($left);
    }
}


# What bayeux_status (at uri, '/status' unless given) reports of one
# endpoint (endpoint, '/cometd' unless given), asked on a connection of
# its own: the endpoint's hash of its JSON answer, or undef.
sub endpoint_status {
    my ($self, %o) = @_;
    my $r = $self->request(method => 'GET', uri => $o{uri} // '/status',
                           new_connection => 1);
    my $j = eval { $self->decode_json($r->body) } or return undef;
    my $name = $o{endpoint} // '/cometd';
    my ($ep) = grep { $_->{endpoint} eq $name } @{ $j->{endpoints} || [] };
    return $ep;
}


package Bayeux::Client::Handle;

# A pending request.  Methods: ready (has the whole response arrived?
# never blocks), elapsed (seconds since the request was sent).

use strict;
use warnings;

use Time::HiRes qw(time);

sub ready {
    my ($self) = @_;
    return 1 if $self->{done};
    my $conn = $self->{conn};
    return 1 if $conn->is_eof;
    $conn->read_some(time) while $conn->sock && !$conn->is_eof
                                  && _readable($conn);
    my ($res) = eval {
        Bayeux::HTTP::parse_response(\$conn->{buf}, $self->{method} eq 'HEAD',
                                     $conn->is_eof)
    };
    return 1 if $@ || $res || $conn->is_eof;
    return 0;
}

sub _readable {
    my ($conn) = @_;
    my $sel = IO::Select->new($conn->sock);
    return scalar $sel->can_read(0);
}

sub elapsed {
    my ($self) = @_;
    my $sent = $self->{conn} ? $self->{conn}{sent_at} : undef;
    return time - ($sent // $self->{started});
}

sub client { $_[0]{client} }

1;
