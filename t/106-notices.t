# bayeux_disconnect_request: a notice to the application when a session
# ends, by disconnect or by expiry, once; bayeux_presence_channel: a
# message to its subscribers when a user's first session begins and when
# the last one ends.  t/redis/010-protocol.t runs it on Redis, where an
# expiry is noticed by a sweep of the workers.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Test::Bayeux::Session;

our $APP = Test::Bayeux::App->new;

# a Redis prefix of its own (t/redis/010-protocol.t): what expires is this
# file's
$ENV{TEST_NGINX_KEYS} = 'bayeux:t106-' . $$ . int(rand(1e6)) . ':';
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

{
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die $!;
    $ENV{TEST_NGINX_DOWN_PORT} = $s->sockport;
    close $s;
}

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_interval 0;
        bayeux_max_interval 1s;
        bayeux_timeout 1s;
        bayeux_handshake_request /_app/handshake;
        bayeux_disconnect_request /_app/disconnect;
        bayeux_presence_channel /presence;
    }
    location /down {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_disconnect_request /_down/disconnect;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
    location /_down/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_DOWN_PORT;
    }
CONF

run_tests();

$APP->stop;

our $RUN;

# a session of a user (granted everything)
sub session_of {
    my ($user, $transport) = @_;
    $main::APP->answer('/_app/handshake', status => 200,
        body => JSON::PP::encode_json({ user => $user, subscribe => ['/**'],
                                        publish => ['/**'] }),
        when => "\"$user\"");
    return Test::Bayeux::Session->new($transport // 'long-polling',
                                      ext => { as => $user });
}

# the notices the application got (of the session $cid, if given), after
# waiting for $n of them
sub notices {
    my ($n, $timeout, $cid) = @_;
    my $deadline = time + ($timeout // 5);
    my @q;
    while (time < $deadline) {
        @q = grep { !defined $cid || $_->{clientId} eq $cid }
             map { $_->{json} }
             grep { $_->{path} eq '/_app/disconnect' }
             @{ $main::APP->requests };
        last if @q >= $n;
        sleep 0.1;
    }
    return \@q;
}

__DATA__

=== TEST 1: a disconnect: one notice, with the session, its user and the reason
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my $s = main::session_of("ann$main::RUN");
my $cid = $s->client_id;
my ($r) = $s->send([ { channel => '/meta/disconnect' } ]);
ok $r->{successful}, 'disconnected';
my $q = main::notices(1);
is_deeply $q, [ { clientId => $cid, user => "ann$main::RUN",
                  reason => 'disconnect' } ], 'the notice';
sleep 0.5;
is scalar @{ main::notices(2, 0.5) }, 1, 'once';
my ($req) = grep { $_->{path} eq '/_app/disconnect' } @{ $main::APP->requests };
is $req->{method}, 'POST', 'POST';
is $req->{headers}{'content-type'}, 'application/json', 'JSON';
--- no_error_log
[error]

=== TEST 2: an expiry: one notice, reason expired, for a session that stopped connecting (no user: null), counted once
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_interval 0;
        bayeux_max_interval 1s;
        bayeux_timeout 1s;
        bayeux_disconnect_request /_app/disconnect;
    }
    location = /status {
        bayeux_status;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::APP->clear;
my $c = $server->client;
$c->handshake;
my $cid = $c->client_id;
my $q = main::notices(1, 8);
is_deeply $q, [ { clientId => $cid, user => undef, reason => 'expired' } ],
          'the notice';
sleep 1;
is scalar @{ main::notices(2, 0.5) }, 1, 'once';
my $st = $server->client(path => '')->request(method => 'GET',
                                              uri => '/status');
my $j = JSON::PP::decode_json($st->body);
is $j->{endpoints}[0]{sessions}{ended}{expired}, 1, 'counted once';
--- no_error_log
[error]

=== TEST 3: presence: present when a user's first session begins, absent when the last ends (disconnect or expiry); not for the others
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_interval 0;
        bayeux_max_interval 4s;
        bayeux_timeout 1s;
        bayeux_handshake_request /_app/handshake;
        bayeux_presence_channel /presence;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::RUN = 'r' . int(rand(1e9));
my $l = $server->client;
$main::APP->answer('/_app/handshake', status => 200,
                   body => '{"subscribe":["/presence"]}', when => 'watcher');
$l->handshake(ext => { as => 'watcher' });
ok $l->subscribe('/presence')->{successful}, 'a watcher of /presence';
my $watch = sub {
    my @d;
    my $deadline = time + ($_[1] // 2);
    while (time < $deadline) {
        my $res = $l->post('/', [ { channel => '/meta/connect',
                                    clientId => $l->client_id,
                                    connectionType => 'long-polling',
                                    advice => { timeout => 0 } } ]);
        push @d, map { $_->{data} } grep { $_->{channel} eq '/presence' }
                 @{ $res->{messages} || [] };
        last if @d >= $_[0];
        sleep 0.1;
    }
    return \@d;
};
my $ann = "ann$main::RUN";
my $a1 = main::session_of($ann);
is_deeply $watch->(1), [ { user => $ann, present => JSON::PP::true } ],
          'ann is present';
my $a2 = main::session_of($ann, 'websocket');
$a1->send([ { channel => '/meta/disconnect' } ]);
is_deeply $watch->(1), [], 'her second session, her first one gone: nothing';
$a2->send([ { channel => '/meta/disconnect' } ]);
is_deeply $watch->(1), [ { user => $ann, present => JSON::PP::false } ],
          'her last session gone: absent';
my $b = main::session_of("bob$main::RUN");
is_deeply $watch->(1), [ { user => "bob$main::RUN",
                           present => JSON::PP::true } ], 'bob is present';
# bob stops connecting: his session expires (the watcher keeps connecting)
is_deeply $watch->(1, 12), [ { user => "bob$main::RUN",
                               present => JSON::PP::false } ],
          'bob expired: absent';
--- no_error_log
[error]

=== TEST 4: the application down: the failure is logged, nothing else changes
--- bayeux
my $c = $server->client(path => '/down');
$c->handshake;
ok $c->disconnect->{successful}, 'the disconnect is answered';
sleep 0.5;
my $c2 = $server->client(path => '/down');
ok $c2->handshake->{successful}, 'the endpoint goes on';
--- error_log
bayeux: disconnect request "/_down/disconnect" failed: status 502

=== TEST 5: a session whose queue overflowed ends: told as "overflow"
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_max_queue 3;
        bayeux_disconnect_request /_app/disconnect;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::APP->clear;
my $slow = $server->client;
$slow->handshake;
ok $slow->subscribe('/flood')->{successful}, 'a slow reader';
my $cid = $slow->client_id;
my $p = $server->client;
$p->handshake;
$p->publish('/flood', { n => $_ }) for 1 .. 5;
# its next connect is told, and the session ends
my $r = $slow->connect(advice => { timeout => 0 });
is $r->{reply}{error}, '408::queue_overflow', 'the reader is told';
my $q = main::notices(1);
is_deeply $q, [ { clientId => $cid, user => undef, reason => 'overflow' } ],
          'the notice says why';
--- no_error_log
[error]
