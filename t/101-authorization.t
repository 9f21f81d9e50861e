# The application decides subscribes and publishes.  Its handshake answer
# binds the session to a user and grants channel patterns (allowed at
# once, with no further request); bayeux_subscribe_request and
# bayeux_publish_request ask it for the rest, and where no location is
# configured for an operation it is denied (closed by default).  A real
# application server (t/lib/Test/Bayeux/App.pm) answers on a loopback
# port.  On each transport; t/redis/010-protocol.t runs it on Redis.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Bayeux::WebSocket;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

{
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die $!;
    $ENV{TEST_NGINX_DOWN_PORT} = $s->sockport;
    close $s;
}

our @TRANSPORTS = ('long-polling', 'callback-polling', 'websocket');
our $ALICE = '{"user":"alice","subscribe":["/chat/**","/user/alice/*"],'
           . '"publish":["/chat/*"]}';

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
    }
    location /asked {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
        bayeux_subscribe_request /_app/subscribe;
        bayeux_publish_request /_app/publish;
    }
    location /subscribe-only {
        bayeux;
        bayeux_timeout 2s;
        bayeux_subscribe_request /_app/subscribe;
    }
    location /down {
        bayeux;
        bayeux_timeout 2s;
        bayeux_subscribe_request /_down/subscribe;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
        proxy_read_timeout 1s;
    }
    location /_down/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_DOWN_PORT;
    }
CONF

run_tests();

$APP->stop;


# A session on a transport: an object with send(\@messages) -> the replies
# (not the deliveries), in the order sent.
package Session;

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

package main;

# a long-polling listener granted everything on /chat and /other
sub listener {
    my ($path, @channels) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client(path => $path // '/cometd');
    $c->handshake;
    $c->subscribe($_) for @channels;
    $c->connect(advice => { timeout => 0 });
    return $c;
}

sub requests_to {
    my ($path) = @_;
    return [ grep { $_->{path} eq $path } @{ $main::APP->requests } ];
}

sub count_lines {
    my ($re) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    return scalar grep { /$re/ } split /\n/, $server->error_log_text;
}

sub ok_reply { { id => $_[0], channel => $_[1], successful => JSON::PP::true,
                 @_[2 .. $#_] } }

__DATA__

=== TEST 1: granted at handshake: allowed at once, with no request; the rest denied (no location): 403:denied_by_security_policy:<op>_denied
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200, body => $main::ALICE);
    my $s = Session->new($t);
    ok $s->handshake->{successful}, "$t: handshake";
    my $cid = $s->client_id;
    my @r = $s->send([
        { channel => '/meta/subscribe', subscription => '/chat/room' },
        { channel => '/meta/subscribe', subscription => '/chat/**' },
        { channel => '/meta/subscribe', subscription => '/user/alice/inbox' },
        { channel => '/meta/subscribe', subscription => '/user/bob/inbox' },
        { channel => '/meta/subscribe', subscription => '/user/alice/*' },
        { channel => '/meta/subscribe', subscription => '/user/alice/**' },
        { channel => '/meta/subscribe',
          subscription => [ '/chat/a', '/secret' ] },
        { channel => '/chat/room', data => { n => 1 } },
        { channel => '/chat/room/deeper', data => { n => 2 } },
        { channel => '/secret', data => { n => 3 } },
    ]);
    my $sd = sub { { id => $_[0], channel => '/meta/subscribe',
                     successful => JSON::PP::false,
                     error => "403:denied_by_security_policy:subscribe_denied",
                     clientId => $cid, subscription => $_[1] } };
    my $pd = sub { { id => $_[0], channel => $_[1],
                     successful => JSON::PP::false, clientId => $cid,
                     error => '403:denied_by_security_policy:publish_denied' } };
    is_deeply \@r, [
        main::ok_reply('100', '/meta/subscribe', clientId => $cid,
                       subscription => '/chat/room'),
        main::ok_reply('101', '/meta/subscribe', clientId => $cid,
                       subscription => '/chat/**'),
        main::ok_reply('102', '/meta/subscribe', clientId => $cid,
                       subscription => '/user/alice/inbox'),
        $sd->('103', '/user/bob/inbox'),
        main::ok_reply('104', '/meta/subscribe', clientId => $cid,
                       subscription => '/user/alice/*'),
        $sd->('105', '/user/alice/**'),
        $sd->('106', [ '/chat/a', '/secret' ]),
        main::ok_reply('107', '/chat/room'),
        $pd->('108', '/chat/room/deeper'),
        $pd->('109', '/secret'),
    ], "$t: the exact replies, in order" or diag explain \@r;
    is_deeply [ map { $_->{path} } @{ $main::APP->requests } ],
              [ '/_app/handshake' ], "$t: only the handshake asked";
}
--- no_error_log
[error]

=== TEST 2: a denied operation changes nothing: not subscribed, nothing published
--- bayeux
$main::APP->answer('/_app/handshake', status => 200,
                   body => '{"subscribe":["/chat/**"],"publish":["/chat/**"]}',
                   when => 'listener');
$main::APP->answer('/_app/handshake', status => 200,
                   body => '{"subscribe":["/open"],"publish":["/open"]}');
my $server = Test::Nginx::Bayeux::Conversation::server();
my $l = $server->client;
$l->handshake(ext => { who => 'listener' });
ok $l->subscribe('/chat/room')->{successful}, 'the listener subscribes';
$l->connect(advice => { timeout => 0 });
for my $t (@main::TRANSPORTS) {
    my $s = Session->new($t);
    my @r = $s->send([ { channel => '/meta/subscribe',
                         subscription => '/chat/room' },
                       { channel => '/chat/room', data => { from => $t } },
                       { channel => '/open', data => { from => $t } } ]);
    ok !$r[0]{successful}, "$t: subscribe denied";
    ok !$r[1]{successful}, "$t: publish denied";
    ok $r[2]{successful}, "$t: the batch goes on";
    $l->publish('/chat/room', { from => 'listener', t => $t });
    my $d = $l->wait_deliveries(count => 1, channel => '/chat/room');
    is_deeply [ map { $_->{data} } @$d ], [ { from => 'listener', t => $t } ],
              "$t: nothing of the denied publish reached the channel";
    if ($t eq 'websocket') {
        sleep 0.3;
        is scalar(grep { $_->{channel} eq '/chat/room' }
                  @{ $s->{deliveries} || [] }), 0,
           "$t: the denied subscriber got nothing";
    }
}
--- no_error_log
[error]

=== TEST 3: the handshake answer: user and ext; ext merged into the reply; 204 (no body) accepts with no grants
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200,
        body => '{"user":"alice","ext":{"greeting":"hi alice","n":[1,2]},'
              . '"other":{"ignored":[true]}}');
    my $s = Session->new($t);
    my $r = $s->handshake;
    ok $r->{successful}, "$t: accepted";
    is_deeply $r->{ext}, { greeting => 'hi alice', n => [1, 2] },
              "$t: ext in the reply";
    $main::APP->answer('/_app/handshake', status => 204);
    $s = Session->new($t);
    ok $s->handshake->{successful}, "$t: 204 accepts";
    ok !exists $s->handshake->{ext}, "$t: no ext";
    my ($sub) = $s->send([ { channel => '/meta/subscribe',
                             subscription => '/chat' } ]);
    is $sub->{error}, '403:denied_by_security_policy:subscribe_denied',
       "$t: nothing granted";
}
--- no_error_log
[error]

=== TEST 4: bayeux_subscribe_request: asked for what is not granted, with the message and the client's headers; 2xx allows, 403 denies with the application's reason
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200, body => $main::ALICE);
    $main::APP->answer('/_app/subscribe', status => 200);
    $main::APP->answer('/_app/subscribe', status => 403,
                       body => '{"reason":"not_a_member"}', when => '/club');
    $main::APP->answer('/_app/subscribe', status => 403, when => '/vault');
    $main::APP->answer('/_app/subscribe', status => 403,
                       body => '{"reason":"bad:reason"}', when => '/colon');
    my $s = Session->new($t, path => '/asked',
                         cookies => { app => 42 },
                         headers => [ Authorization => 'Bearer xyz' ]);
    my $cid = $s->client_id;
    my @r = $s->send([
        { channel => '/meta/subscribe', subscription => '/chat/granted' },
        { channel => '/meta/subscribe', subscription => '/news',
          ext => { token => 'n' } },
        { channel => '/meta/subscribe', subscription => '/club' },
        { channel => '/meta/subscribe', subscription => '/vault' },
        { channel => '/meta/subscribe', subscription => '/colon' },
    ]);
    is_deeply [ map { $_->{successful} ? 'ok' : $_->{error} } @r ],
              [ 'ok', 'ok', '403:not_a_member:subscribe_denied',
                '403:denied_by_security_policy:subscribe_denied',
                '403:denied_by_security_policy:subscribe_denied' ],
              "$t: the decisions";
    my $asked = main::requests_to('/_app/subscribe');
    is scalar @$asked, 4, "$t: the granted one was not asked";
    my $q = $asked->[0];
    is $q->{method}, 'POST', "$t: POST";
    is_deeply $q->{json}, { channel => '/meta/subscribe', clientId => $cid,
                            subscription => '/news', id => '101',
                            ext => { token => 'n' } },
              "$t: the message as sent";
    like $q->{headers}{cookie}, qr/app=42/, "$t: Cookie";
    is $q->{headers}{authorization}, 'Bearer xyz', "$t: Authorization";
}
--- no_error_log
[error]

=== TEST 5: bayeux_publish_request: 2xx publishes, {"data":...} is published instead, 403 denies; subscribers see what was allowed
--- bayeux
$main::APP->answer('/_app/handshake', status => 200,
                   body => '{"subscribe":["/**"]}');
my $l = main::listener('/asked', '/room');
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200,
                       body => '{"subscribe":["/**"]}');
    $main::APP->answer('/_app/publish', status => 200);
    $main::APP->answer('/_app/publish', status => 200,
        body => '{"data":{"text":"[removed]","by":"app"}}', when => 'rude');
    $main::APP->answer('/_app/publish', status => 403,
                       body => '{"reason":"muted"}', when => 'muted');
    my $s = Session->new($t, path => '/asked');
    my @r = $s->send([
        { channel => '/room', data => { text => 'hello' } },
        { channel => '/room', data => { text => 'rude words' } },
        { channel => '/room', data => { text => 'muted' } },
    ]);
    is_deeply [ map { $_->{successful} ? 'ok' : $_->{error} } @r ],
              [ 'ok', 'ok', '403:muted:publish_denied' ], "$t: decisions";
    my $asked = main::requests_to('/_app/publish');
    is scalar @$asked, 3, "$t: each asked";
    is_deeply $asked->[0]{json},
              { channel => '/room', clientId => $s->client_id,
                data => { text => 'hello' }, id => '100' },
              "$t: the publish as sent";
    my $d = $l->wait_deliveries(count => 2, channel => '/room');
    is_deeply [ map { $_->{data} } @$d ],
              [ { text => 'hello' }, { text => '[removed]', by => 'app' } ],
              "$t: the listener got what was allowed, as the application said";
}
--- no_error_log
[error]
