# bayeux_publisher: a location for backends.  POST publishes a message or
# an array of them into the endpoint: on a channel, to one session
# ("clientId") or to every session of a user ("user"); one result per
# message.  GET tells how many sessions a user has, how many subscribers
# a channel has.  Bad input: 400 and a reason, nothing applied.
# t/redis/010-protocol.t runs it on Redis.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Test::Bayeux::Session;

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

# names of users and channels of this run: on the Redis engine (which
# t/redis/010-protocol.t gives this file), sessions of earlier blocks and
# runs are still there
our $RUN = 'r' . $$ . int(rand(1e6));

# and a Redis prefix of its own: sessions of other files subscribed to
# "/**" would be counted too
$ENV{TEST_NGINX_KEYS} = "bayeux:t105-$RUN:";

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_handshake_request /_app/handshake;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
    location = /publish {
        bayeux_publisher /cometd;
        client_max_body_size 2k;
    }
CONF

run_tests();

$APP->stop;

# POST to the publisher: (status, decoded body)
sub publish {
    my ($body, %o) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client(path => '');
    my $res = $c->request(method => $o{method} // 'POST', uri => '/publish',
                          body => ref $body ? JSON::PP::encode_json($body)
                                            : $body,
                          content_type => 'application/json');
    return ($res->status, scalar eval { JSON::PP::decode_json($res->body) },
            $res->body);
}

sub presence {
    my ($query) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client(path => '');
    my $res = $c->request(method => 'GET', uri => "/publish?$query");
    return ($res->status, scalar eval { JSON::PP::decode_json($res->body) });
}

# a session of a user, on a transport, subscribed to channels
sub session_of {
    my ($user, $transport, @channels) = @_;
    $main::APP->answer('/_app/handshake', status => 200,
        body => JSON::PP::encode_json({ user => $user, subscribe => ['/**'],
                                        publish => ['/**'] }),
        when => "\"$user\"");
    my $s = Test::Bayeux::Session->new($transport, ext => { as => $user });
    for my $ch (@channels) {
        my ($r) = $s->send([ { channel => '/meta/subscribe',
                               subscription => $ch } ]);
        die "subscribe $ch: " . ($r->{error} // '?') unless $r->{successful};
    }
    return $s;
}

# a websocket's connect held, for deliveries to be pushed: its first
# connect is answered at once
sub hold {
    my ($s) = @_;
    $s->send([ { channel => '/meta/connect', connectionType => 'websocket',
                 advice => { timeout => 0 } } ]);
    $s->{ws}->send_json([ { channel => '/meta/connect', id => 'held',
                            clientId => $s->client_id,
                            connectionType => 'websocket' } ]);
}

# what a session received (long-polling: a connect; websocket: what came)
sub received {
    my ($s, $channel) = @_;
    if ($s->{ws}) {
        my $deadline = Time::HiRes::time() + 2;
        while (Time::HiRes::time() < $deadline) {
            my $in = $s->{ws}->recv_json(timeout => 0.3) or next;
            push @{ $s->{deliveries} }, @$in;
        }
        my @d = grep { $_->{channel} eq $channel && exists $_->{data} }
                @{ $s->{deliveries} || [] };
        $s->{deliveries} = [];
        return [ map { $_->{data} } @d ];
    }
    my $c = $s->{c};
    my $res = $c->post('/', [ { channel => '/meta/connect',
                                clientId => $s->client_id,
                                connectionType => 'long-polling',
                                advice => { timeout => 0 } } ]);
    return [ map { $_->{data} }
             grep { $_->{channel} eq $channel && exists $_->{data} }
             @{ $res->{messages} || [] } ];
}

__DATA__

=== TEST 1: a message on a channel: every subscriber gets it, the result counts them
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my $a = main::session_of("ann$main::RUN", 'long-polling', "/news$main::RUN");
my $b = main::session_of("bob$main::RUN", 'websocket', "/news$main::RUN/**");
main::hold($b);
my ($status, $r) = main::publish({ channel => "/news$main::RUN/x", data => { n => 1 },
                                   id => 'p1' });
is $status, 200, 'status 200';
is_deeply $r, [ { id => 'p1', channel => "/news$main::RUN/x",
                  successful => JSON::PP::true, sessions => 1 } ],
          'one result, one session reached (the pattern)';
($status, $r) = main::publish([ { channel => "/news$main::RUN", data => 'a' },
                                { channel => "/news$main::RUN", data => 'b' } ]);
is_deeply [ map { $_->{sessions} } @$r ], [ 1, 1 ], 'an array: in order';
is_deeply main::received($a, "/news$main::RUN"), [ 'a', 'b' ], 'ann got both, in order';
is_deeply main::received($b, "/news$main::RUN/x"), [ { n => 1 } ], 'bob got his';
--- no_error_log
[error]

=== TEST 2: to one session (clientId), to a user's every session (user): whatever they subscribed to; a session that is gone
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my $a1 = main::session_of("ann$main::RUN", 'long-polling');
my $a2 = main::session_of("ann$main::RUN", 'websocket');
main::hold($a2);
my $b = main::session_of("bob$main::RUN", 'long-polling');
my ($status, $r) = main::publish([
    { channel => "/private$main::RUN", data => { to => "ann$main::RUN" }, user => "ann$main::RUN" },
    { channel => "/private$main::RUN", data => { to => "bob$main::RUN" },
      clientId => $b->client_id },
    { channel => "/private$main::RUN", data => 'nobody', user => "carol$main::RUN" },
    { channel => "/private$main::RUN", data => 'gone', clientId => '0' x 40 },
]);
is $status, 200, 'status 200';
is_deeply [ map { $_->{successful} ? $_->{sessions} : $_->{error} } @$r ],
          [ 2, 1, 0, '402::session_unknown' ], 'the results';
is_deeply main::received($a1, "/private$main::RUN"), [ { to => "ann$main::RUN" } ], "ann's first";
is_deeply main::received($a2, "/private$main::RUN"), [ { to => "ann$main::RUN" } ],
          "ann's second (websocket)";
is_deeply main::received($b, "/private$main::RUN"), [ { to => "bob$main::RUN" } ], 'bob: his only';
--- no_error_log
[error]

=== TEST 3: presence: a user's sessions, a channel's subscribers, as sessions come and go
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my ($status, $r) = main::presence("user=ann$main::RUN");
is_deeply [ $status, $r ], [ 200, { user => "ann$main::RUN", sessions => 0 } ],
          'nobody yet';
my $a1 = main::session_of("ann$main::RUN", 'long-polling', "/room$main::RUN");
my $a2 = main::session_of("ann$main::RUN", 'websocket', "/room$main::RUN");
my $b = main::session_of("bob%$main::RUN", 'long-polling', "/room$main::RUN");
is_deeply [ main::presence("user=ann$main::RUN") ], [ 200, { user => "ann$main::RUN",
                                                  sessions => 2 } ], 'two';
is_deeply [ main::presence("user=bob%25$main::RUN") ],
          [ 200, { user => "bob%$main::RUN", sessions => 1 } ], 'an escaped name';
is_deeply [ main::presence("channel=/room$main::RUN") ],
          [ 200, { channel => "/room$main::RUN", subscribers => 3 } ], 'the room: 3';
$a1->send([ { channel => '/meta/disconnect' } ]);
is_deeply [ main::presence("user=ann$main::RUN") ], [ 200, { user => "ann$main::RUN",
                                                  sessions => 1 } ],
          'one disconnected';
is_deeply [ main::presence("channel=/room$main::RUN") ],
          [ 200, { channel => "/room$main::RUN", subscribers => 2 } ], 'the room: 2';
--- no_error_log
[error]

=== TEST 4: bad input: 400 and the reason, nothing applied
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my $a = main::session_of("ann$main::RUN", 'long-polling', "/x$main::RUN");
my @cases = (
    [ '', 'empty body' ],
    [ 'not json', qr/^malformed JSON/ ],
    [ '{"channel":5,"data":1}', '"channel" must be a string' ],
    [ '{"channel":"/x","data":1,"user":[1]}', '"user" must be a string' ],
    [ '{"data":1}', 'message 1: channel missing' ],
    [ '{"channel":"x","data":1}', 'message 1: invalid channel' ],
    [ '{"channel":"/meta/connect","data":1}',
      'message 1: /meta channels are not published to' ],
    [ '{"channel":"/x/*","data":1}',
      'message 1: a message goes to a channel, not to a pattern' ],
    [ '[{"channel":"/x","data":1},{"channel":"/x"}]',
      'message 2: data missing' ],
    [ '{"channel":"/service/x","data":1}',
      'message 1: /service channels are not published to: name a "clientId" or a "user"' ],
    [ '{"channel":"/x","data":1,"user":"ann","clientId":"' . ('0' x 40) . '"}',
      'message 1: "clientId" and "user" together' ],
);
for my $c (@cases) {
    my ($body, $why) = @$c;
    my ($status, $r) = main::publish($body);
    is $status, 400, "400: " . (ref $why ? $why : $why);
    if (ref $why) { like $r->{error}, $why, 'its reason' }
    else { is_deeply $r, { error => $why }, 'its reason' }
}
is_deeply main::received($a, "/x$main::RUN"), [], 'nothing was published';
my ($status) = main::publish('{"channel":"/x","data":"' . ('a' x 3000) . '"}');
is $status, 413, 'client_max_body_size';
($status, my $r) = main::presence('');
is_deeply [ $status, $r ],
          [ 400, { error => 'a "user" or a "channel" argument is needed' } ],
          'GET without a question';
($status, $r) = main::presence('channel=nope');
is $status, 400, 'GET an invalid channel';
($status) = main::publish('{}', method => 'PUT');
is $status, 405, 'PUT: 405';
--- no_error_log
[alert]
[crit]

=== TEST 5: nginx -t: a publisher names a bayeux location that exists
--- config
    location = /publish {
        bayeux_publisher /nowhere;
    }
--- must_die
--- error_log
bayeux_publisher "/nowhere": no bayeux location of that name
