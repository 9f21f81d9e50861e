# bayeux_max_inactivity: CometD's ActivityExtension.  A session whose
# client sends nothing but /meta/connect (client), or to which nothing is
# sent either (client_server), for the period ends as a disconnect would;
# its next connect, or the one it holds, is told that the session is
# unknown, with advice to handshake.  t/redis/010-protocol.t runs it on
# Redis, where the connect that comes after the period ends it.
#
# Periods are a few seconds and each check allows a whole period or more
# of slack, so that a loaded machine does not make them fail.

use strict;
use warnings;

use lib 't/lib';
use Time::HiRes qw(time sleep);
use Test::Nginx::Bayeux;
use Test::Bayeux::App;

our $APP = Test::Bayeux::App->new;

# a Redis prefix of its own (t/redis/010-protocol.t)
$ENV{TEST_NGINX_KEYS} = 'bayeux:t115-' . $$ . int(rand(1e6)) . ':';
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

our $R = 'r' . int(rand(1e9));

# Connects (each held up to bayeux_timeout) until one fails or $limit
# seconds passed, calling $between (if any) before each; returns the
# replies, the seconds it took, and when it ended.
sub connect_until_refused {
    my ($c, $limit, $between) = @_;
    my $t0 = time;
    my @replies;
    while (time - $t0 < $limit) {
        $between->() if $between;
        my $r = $c->connect(timeout => 10);
        push @replies, $r->{reply};
        last if !$r->{reply}{successful};
    }
    return (\@replies, time - $t0, time);
}

sub status {
    my ($server) = @_;
    return $server->client(path => '')->endpoint_status;
}

sub subscribers {
    my ($server, $channel) = @_;
    my $res = $server->client(path => '')->request(method => 'GET',
                                                   uri => "/pub?channel=$channel");
    return JSON::PP::decode_json($res->body)->{subscribers};
}

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_timeout 1s;
        bayeux_max_interval 30s;
        bayeux_max_inactivity 3s;
    }
    location /pub {
        bayeux_publisher /cometd;
    }
    location = /status {
        bayeux_status;
    }
CONF

run_tests();

$APP->stop;

__DATA__

=== TEST 1: a session whose client only connects ends after the period: its connect gets 402::session_unknown with advice to handshake, its subscriptions are gone, counted, logged without the clientId above debug
--- bayeux
my $ch = "/idle/$main::R/1";
my $c = client();
$c->handshake;
ok $c->subscribe($ch)->{successful}, 'subscribed';
my $cid = $c->client_id;
is main::subscribers($server, $ch), 1, 'one subscriber';
my ($replies, $took) = main::connect_until_refused($c, 12);
my $last = pop @$replies;
ok scalar(@$replies) >= 2, 'connects succeeded meanwhile';
ok !(grep { !$_->{successful} } @$replies), 'each of them';
cmp_ok $took, '>=', 2.9, 'not before the period';
cmp_ok $took, '<', 9, 'ended after it';
is_deeply $last, { id => $last->{id}, channel => '/meta/connect',
                   clientId => $cid, successful => JSON::PP::false,
                   error => '402::session_unknown',
                   advice => { reconnect => 'handshake', interval => 0 } },
          'the connect is told: unknown session, handshake again';
my $p = $c->publish("/other/$main::R", 1);
is $p->{error}, '402::session_unknown', 'the session is gone';
is main::subscribers($server, $ch), 0, 'its subscription is gone';
my $ep = main::status($server);
is $ep->{sessions}{ended}{inactive}, 1, 'counted as ended, inactive';
is $ep->{sessions}{ended}{disconnect}, 0, 'not as a disconnect';
my $m = $server->client(path => '')->request(method => 'GET',
                                             uri => '/status?format=prometheus');
like $m->body, qr/^bayeux_sessions_ended_total\{endpoint="\/cometd",reason="inactive"\} 1$/m,
     'prometheus: reason inactive';
my @lines = split /\n/, $server->error_log_text;
is scalar(grep { /\[info\] .*bayeux: a session was inactive for bayeux_max_inactivity \(3000 ms\), the session ends/ } @lines),
   1, 'logged once, at info';
is scalar(grep { /\[debug\] .*bayeux: inactive: session $cid/ } @lines), 1,
   'named at debug level';
is_deeply [ grep { !/\[debug\]/ && index($_, $cid) >= 0 } @lines ], [],
          'no line above debug names the session';
$c->handshake;
ok $c->connect->{reply}{successful}, 'a new handshake makes a new session';
--- no_error_log
[error]



=== TEST 2: client mode: messages of the client (publishes) keep it alive past twice the period, not deliveries; once it only connects, it ends
--- bayeux
my $ch = "/feed/$main::R/2";
my $a = client();
my $b = client();
$a->handshake;
$b->handshake;
ok $a->subscribe($ch)->{successful}, 'a subscribed';
# a publishes (to a channel no one reads) while it connects, b publishes
# to a: a's publishes keep it alive
my ($n, $active) = (0);
my ($replies, $took) = main::connect_until_refused($a, 7, sub {
    $a->publish("/mine/$main::R", ++$n);
    $active = time;
    $b->publish($ch, $n);
});
ok !(grep { !$_->{successful} } @$replies), 'alive for 7 s while it publishes';
cmp_ok $took, '>=', 7, 'the whole time';
ok scalar(grep { $_->{channel} eq $ch } @{ $a->deliveries }) >= 3,
   'deliveries arrived meanwhile';
# deliveries go on, a only connects: deliveries do not count
my $end;
($replies, $took, $end) = main::connect_until_refused($a, 12, sub {
    $b->publish($ch, ++$n);
    sleep 0.3;
});
my $last = pop @$replies;
is $last->{error}, '402::session_unknown', 'then it ends';
is $last->{advice}{reconnect}, 'handshake', 'told to handshake';
cmp_ok $end - $active, '>=', 2.9, 'not before the period from its last publish';
ok $b->publish($ch, 'b')->{successful}, 'b, which publishes, is alive';
--- no_error_log
[error]



=== TEST 2b: client mode: /service messages are the client's too, and keep it alive
--- bayeux
my $c = client();
$c->handshake;
my $n = 0;
my ($replies, $took) = main::connect_until_refused($c, 7, sub {
    my $r = $c->post('/', [ { channel => '/service/ping', data => ++$n,
                              clientId => $c->client_id } ]);
    die 'the /service message failed' unless $r->status == 200;
});
ok !(grep { !$_->{successful} } @$replies), 'alive for 7 s';
cmp_ok $took, '>=', 7, 'the whole time';
--- no_error_log
[error]



=== TEST 3: client_server mode: deliveries keep a session that only connects alive; when they stop, it ends
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_timeout 1s;
        bayeux_max_interval 30s;
        bayeux_max_inactivity 3s client_server;
    }
    location = /status {
        bayeux_status;
    }
--- bayeux
my $ch = "/feed/$main::R/3";
my $a = client();
my $b = client();
$a->handshake;
$b->handshake;
ok $a->subscribe($ch)->{successful}, 'a subscribed';
my ($n, $sent) = (0);
my ($replies, $took) = main::connect_until_refused($a, 7, sub {
    $sent = time;
    $b->publish($ch, ++$n);
    sleep 0.3;
});
ok !(grep { !$_->{successful} } @$replies),
   'alive for 7 s while messages are sent to it';
cmp_ok $took, '>=', 7, 'the whole time';
ok scalar(grep { $_->{channel} eq $ch } @{ $a->deliveries }) >= 3,
   'they arrived';
ok $b->disconnect->{successful}, 'b is done';
my $end;
($replies, $took, $end) = main::connect_until_refused($a, 12);
my $last = pop @$replies;
is $last->{error}, '402::session_unknown', 'then it ends';
is $last->{advice}{reconnect}, 'handshake', 'told to handshake';
cmp_ok $end - $sent, '>=', 2.9, 'not before the period from the last delivery';
is main::status($server)->{sessions}{ended}{inactive}, 1, 'counted';
--- no_error_log
[error]



=== TEST 4: the application is told, reason "inactive" (bayeux_disconnect_request)
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_timeout 1s;
        bayeux_max_interval 10s;
        bayeux_max_inactivity 2s;
        bayeux_disconnect_request /_app/disconnect;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::APP->clear;
my $c = client();
$c->handshake;
my $cid = $c->client_id;
my ($replies) = main::connect_until_refused($c, 12);
is $replies->[-1]{error}, '402::session_unknown', 'ended';
my @q;
for (1 .. 50) {
    @q = map { $_->{json} } grep { $_->{path} eq '/_app/disconnect' }
         @{ $main::APP->requests };
    last if @q;
    sleep 0.1;
}
is_deeply \@q, [ { clientId => $cid, user => undef, reason => 'inactive' } ],
          'one notice, reason inactive';
--- no_error_log
[error]



=== TEST 5: without the directive, a session that only connects lives on
--- config
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_timeout 1s;
        bayeux_max_interval 10s;
    }
--- bayeux
my $c = client();
$c->handshake;
my ($replies, $took) = main::connect_until_refused($c, 4);
ok !(grep { !$_->{successful} } @$replies), 'alive';
--- no_error_log
[error]



=== TEST 6: "off" undoes an inherited value
--- config
    bayeux_max_inactivity 1s;
    location /cometd {
        bayeux;
        bayeux_redis_prefix $TEST_NGINX_KEYS;
        bayeux_timeout 1s;
        bayeux_max_interval 10s;
        bayeux_max_inactivity off;
    }
--- bayeux
my $c = client();
$c->handshake;
my ($replies, $took) = main::connect_until_refused($c, 3.5);
ok !(grep { !$_->{successful} } @$replies), 'alive';
--- no_error_log
[error]



=== TEST 7: a mode other than client and client_server is refused, naming the directive
--- config
    location /cometd {
        bayeux;
        bayeux_max_inactivity 10s server;
    }
--- must_die
--- error_log
invalid value "server" in "bayeux_max_inactivity": "client" or "client_server"



=== TEST 8: a period that is no time, or 0, is refused
--- config
    location /cometd {
        bayeux;
        bayeux_max_inactivity 0;
    }
--- must_die
--- error_log
invalid time "0" in "bayeux_max_inactivity": a period greater than 0, or "off"



=== TEST 9: set twice: refused
--- config
    location /cometd {
        bayeux;
        bayeux_max_inactivity 10s;
        bayeux_max_inactivity 20s client;
    }
--- must_die
--- error_log
"bayeux_max_inactivity" directive is duplicate
