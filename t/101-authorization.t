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
use Test::Bayeux::Session;
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
    my $s = Test::Bayeux::Session->new($t);
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
my $l = $server->client;
$l->handshake(ext => { who => 'listener' });
ok $l->subscribe('/chat/room')->{successful}, 'the listener subscribes';
$l->connect(advice => { timeout => 0 });
for my $t (@main::TRANSPORTS) {
    my $s = Test::Bayeux::Session->new($t);
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
    my $s = Test::Bayeux::Session->new($t);
    my $r = $s->handshake;
    ok $r->{successful}, "$t: accepted";
    is_deeply $r->{ext}, { greeting => 'hi alice', n => [1, 2] },
              "$t: ext in the reply";
    $main::APP->answer('/_app/handshake', status => 204);
    $s = Test::Bayeux::Session->new($t);
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
    my $s = Test::Bayeux::Session->new($t, path => '/asked',
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
    my $s = Test::Bayeux::Session->new($t, path => '/asked');
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

=== TEST 6: the application failing denies (fail closed): 503::application_unavailable with retry advice, one error line per burst
--- bayeux
my @cases = (
    [ '/asked', 'status 500', sub {
        $main::APP->answer('/_app/subscribe', status => 500) } ],
    [ '/asked', 'status 504', sub {
        $main::APP->answer('/_app/subscribe', status => 200, delay => 2) } ],
    [ '/asked', 'the answer is not HTTP', sub {
        $main::APP->answer('/_app/subscribe', garbage => "\x00garbage\r\n") } ],
    [ '/asked', 'the answer is not a JSON object', sub {
        $main::APP->answer('/_app/subscribe', status => 200,
                           body => 'yes, fine') } ],
    [ '/down', 'status 502', sub { } ],
);
for my $c (@cases) {
    my ($path, $why, $setup) = @$c;
    for my $t (@main::TRANSPORTS) {
        $main::APP->clear;
        $main::APP->answer('/_app/handshake', status => 204);
        $setup->();
        my $s = Test::Bayeux::Session->new($t, path => $path);
        my @r = $s->send([ { channel => '/meta/subscribe',
                             subscription => '/x' },
                           { channel => '/meta/connect',
                             connectionType => $t,
                             advice => { timeout => 0 } } ]);
        is $r[0]{error}, '503::application_unavailable', "$why ($t): refused";
        is $r[0]{advice}{reconnect}, 'retry', "$why ($t): retry advice";
        ok $r[1]{successful}, "$why ($t): the batch goes on";
    }
    sleep 1.1;
}
my $uri = qr/bayeux: subscribe request "\/_(?:app|down)\/subscribe" failed: /;
for my $c (@cases) {
    my $why = $c->[1];
    my $n = main::count_lines(qr/\[error\].*$uri\Q$why\E/);
    # at most one a second: the timeouts make a burst of three seconds
    my $most = $why eq 'status 504' ? 4 : 2;
    ok $n >= 1 && $n <= $most, "$why: logged once per burst ($n)";
}
--- no_error_log
[alert]
[crit]
[emerg]

=== TEST 7: a handshake answer that cannot be granted fails closed: not JSON, wrong types, invalid patterns, a user with control characters
--- bayeux
my @cases = (
    [ 'OK', 'the answer is not a JSON object' ],
    [ '["/chat"]', 'the answer is not a JSON object' ],
    [ '{"subscribe":"/chat/**"}', 'a member of the answer has the wrong type' ],
    [ '{"subscribe":[1]}', 'a member of the answer has the wrong type' ],
    [ '{"user":["alice"]}', 'a member of the answer has the wrong type' ],
    [ '{"ext":"hi"}', 'a member of the answer has the wrong type' ],
    [ '{"subscribe":["chat"]}',
      'a granted channel is not a channel or a pattern' ],
    [ '{"publish":["/meta/**"]}',
      'a granted channel is not a channel or a pattern' ],
    [ '{"user":"al\nice"}', 'the user has control characters' ],
    [ '{"user":"' . ('a' x 300) . '"}', 'the user is too long' ],
    [ '{"user":"alice"', 'the answer is not a JSON object' ],
);
for my $c (@cases) {
    my ($body, $why) = @$c;
    $main::APP->answer('/_app/handshake', status => 200, body => $body);
    my $s = Test::Bayeux::Session->new('long-polling');
    is $s->handshake->{error}, '503::application_unavailable',
       "$why: refused";
    sleep 1.05;
    ok main::count_lines(qr/\[error\].*handshake request "\/_app\/handshake" failed: \Q$why\E/),
       "$why: logged";
}
--- no_error_log
[alert]
[crit]

=== TEST 8: a stolen clientId gets nothing from another browser: its grants stay with the session's own
--- bayeux
$main::APP->answer('/_app/handshake', status => 200, body => $main::ALICE);
my $alice = Test::Bayeux::Session->new('long-polling');
ok $alice->handshake->{successful}, 'alice';
for my $t (@main::TRANSPORTS) {
    # another browser (its own BAYEUX_BROWSER cookie) naming alice's session
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client(connection_type => $t);
    $c->handshake;
    $c->client_id($alice->client_id);
    my $r = $c->subscribe('/chat/room');
    is $r->{error}, '402::session_unknown', "$t: refused as unknown";
    last if $t eq 'callback-polling';
}
--- no_error_log
[error]

=== TEST 9: $bayeux_client_id, $bayeux_user, $bayeux_channel, $bayeux_transport: in the subrequest's location (proxy_set_header) and in log_format
--- http_config
    log_format bayeux '$bayeux_transport|$bayeux_channel|$bayeux_user|'
                      '$bayeux_client_id';
--- config
    location /asked {
        bayeux;
        bayeux_handshake_request /_app/handshake;
        bayeux_subscribe_request /_app/subscribe;
        bayeux_publish_request /_app/publish;
        access_log logs/bayeux.log bayeux;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
        proxy_set_header X-Bayeux-User $bayeux_user;
        proxy_set_header X-Bayeux-Client $bayeux_client_id;
        proxy_set_header X-Bayeux-Channel $bayeux_channel;
        proxy_set_header X-Bayeux-Transport $bayeux_transport;
    }
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200,
                       body => '{"user":"alice","subscribe":["/chat/**"]}');
    my $s = Test::Bayeux::Session->new($t, path => '/asked');
    my $cid = $s->client_id;
    $s->send([ { channel => '/meta/subscribe', subscription => '/club' },
               { channel => '/room', data => { n => 1 } } ]);
    my @q = @{ $main::APP->requests };
    is scalar @q, 3, "$t: three requests";
    my $h = sub { my $r = shift; [ map { $r->{headers}{"x-bayeux-$_"} }
                                   qw(user client channel transport) ] };
    is_deeply $h->($q[0]), [ undef, undef, '/meta/handshake', $t ],
              "$t: the handshake's (no user, no session yet)";
    is_deeply $h->($q[1]), [ 'alice', $cid, '/club', $t ],
              "$t: the subscribe's: its subscription";
    is_deeply $h->($q[2]), [ 'alice', $cid, '/room', $t ],
              "$t: the publish's";
}
sleep 0.2;
open my $fh, '<', $server->root . '/logs/bayeux.log' or die $!;
my @lines = grep { !/^websocket/ } map { chomp; $_ } <$fh>;
my ($hs) = grep { m{^long-polling\|/meta/handshake\|} } @lines;
like $hs, qr{^long-polling\|/meta/handshake\|alice\|[0-9a-f]{40}$},
     'the handshake request logged with its new session and its user';
my ($sub) = grep { m{^callback-polling\|/meta/subscribe\|} } @lines;
like $sub, qr{^callback-polling\|/meta/subscribe\|alice\|[0-9a-f]{40}$},
     'a callback-polling batch: its first channel, its user';
--- no_error_log
[error]
