# Delivery to a user and presence with the Redis engine across hosts: two
# nginx instances on one Redis.  A user has sessions on both; a backend
# publishes through the publisher location of one: every session of the
# user gets it, on either host, and nobody else; the counts are the same
# from either host; presence reaches subscribers on both.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::App;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $redis = start_redis();
my $app = Test::Bayeux::App->new;
my $port = $app->port;
my $run = 'u' . int(rand(1e9));

for my $u ("ann$run", "bob$run", "eve$run") {
    $app->answer('/_app/handshake', status => 200,
                 body => encode_json({ user => $u, subscribe => ['/**'],
                                       publish => ['/**'] }),
                 when => "\"$u\"");
}

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        http_config => $redis->engine_conf(prefix => '"users:"'),
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
        bayeux_presence_channel /presence;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$port;
    }
    location = /publish {
        bayeux_publisher /cometd;
    }
CONF
    )->start
} 1 .. 2;

sub session {
    my ($server, $user, @channels) = @_;
    my $c = $server->client;
    ok($c->handshake(ext => { as => $user })->{successful},
       "$user: handshake on " . $server->port);
    ok($c->subscribe($_)->{successful}, "$user: subscribe $_") for @channels;
    $c->connect(advice => { timeout => 0 });
    return $c;
}

sub api {
    my ($server, %o) = @_;
    my $c = $server->client(path => '');
    my $res = $c->request(%o);
    return ($res->status, decode_json($res->body));
}

my $watcher = session($servers[1], "eve$run", '/presence');
my $a1 = session($servers[0], "ann$run");
my $a2 = session($servers[1], "ann$run");
my $b = session($servers[0], "bob$run");

my ($status, $r) = api($servers[0], method => 'POST', uri => '/publish',
                       body => encode_json([
                           { channel => '/dm', data => { n => 1 },
                             user => "ann$run" },
                           { channel => '/dm', data => { n => 2 },
                             user => "ann$run" } ]));
is($status, 200, 'published from host A');
is_deeply([ map { $_->{sessions} } @$r ], [ 2, 2 ], 'two sessions each');

for my $s ([ 'ann on A', $a1 ], [ 'ann on B', $a2 ]) {
    my $d = $s->[1]->wait_deliveries(count => 2, channel => '/dm');
    is_deeply([ map { $_->{data}{n} } @$d ], [ 1, 2 ], "$s->[0]: both, in order");
}
is_deeply($b->wait_deliveries(count => 1, channel => '/dm', timeout => 1), [],
          'bob: nothing');

for my $server (@servers) {
    my ($st, $count) = api($server, method => 'GET',
                           uri => "/publish?user=ann$run");
    is_deeply($count, { user => "ann$run", sessions => 2 },
              'ann has 2 sessions, seen from ' . $server->port);
}

# (eve's own came before she subscribed)
my $p = $watcher->wait_deliveries(count => 2, channel => '/presence');
is_deeply([ sort map { $_->{data}{user} } grep { $_->{data}{present} } @$p ],
          [ sort "ann$run", "bob$run" ],
          'presence from both hosts: each user once');

ok($a1->disconnect->{successful}, 'ann leaves A');
ok($a2->disconnect->{successful}, 'ann leaves B');
$p = $watcher->wait_deliveries(count => 1, channel => '/presence');
is_deeply([ map { $_->{data} } @$p ],
          [ { user => "ann$run", present => JSON::PP::false } ],
          'ann is gone: once');

# Redis gone: the publisher says so (503), and comes back with it

$redis->stop;
($status, $r) = api($servers[0], method => 'POST', uri => '/publish',
                    body => encode_json({ channel => '/dm', data => 1,
                                          user => "bob$run" }));
is($status, 503, 'Redis down: 503');
is_deeply($r, [ { channel => '/dm', successful => JSON::PP::false,
                  error => '503::engine_unavailable' } ],
          'the result says why');
($status, $r) = api($servers[0], method => 'GET', uri => "/publish?user=bob$run");
is($status, 503, 'Redis down: the count too');
$redis->start;

my $deadline = time + 10;
while (time < $deadline) {
    ($status, $r) = api($servers[0], method => 'GET',
                        uri => "/publish?user=bob$run");
    last if $status == 200;
    sleep 0.2;
}
is($status, 200, 'Redis back: the publisher works again');

$_->stop for @servers;
$app->stop;

done_testing();
