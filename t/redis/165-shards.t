# bayeux_redis_shards: the engine of an endpoint as 3 shards on one Redis,
# served by two nginx.  Each session lives in one shard (its keys under
# the shard's prefix, the same shard whichever nginx asks); a user's
# sessions share one; a publish reaches the subscribers of every shard,
# each message once and in order, long-polling and websocket alike; a
# publisher whose session is unknown reaches no shard; the publisher
# location counts a channel's subscribers and a user's sessions over all
# shards.  t/redis/135-cluster-shards.t runs shards on a Redis Cluster,
# one per primary.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis qw(:DEFAULT held_session missing_deliveries);
use Test::Bayeux::App;
use Compress::Zlib qw(crc32);
use JSON::PP;

my $redis = start_redis();
my $app = Test::Bayeux::App->new;
my $port = $app->port;
my $run = 'u' . int(rand(1e9));
my $P = 'sh:';

my %grants = (subscribe => ['/**'], publish => ['/**']);
$app->answer('/_app/handshake', status => 200,
             body => encode_json({ user => "ann$run", %grants }),
             when => "\"ann$run\"");
$app->answer('/_app/handshake', status => 200, body => encode_json(\%grants));

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 1,
        http_config => $redis->engine_conf(prefix => "\"$P\"", shards => 3),
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
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

sub api {
    my ($server, %o) = @_;
    my $c = $server->client(path => '');
    my $res = $c->request(%o);
    return ($res->status, decode_json($res->body));
}

# the prefix of the shard that holds session $id's hash
sub shard_prefix {
    my ($id) = @_;
    my @p = grep { $redis->cmd('EXISTS', "$_" . "s:$id") }
            map { m{^(\Q$P\E\d+:)s:} ? $1 : () } $redis->scan("${P}*s:$id");
    return @p == 1 ? $p[0] : "none or several: @p";
}

# 30 sessions, every other one on each nginx, subscribed to /room

my @clients;
for my $i (0 .. 29) {
    my $c = $servers[$i % 2]->client;
    ok($c->handshake->{successful}, "session $i: handshake") or BAIL_OUT;
    ok($c->subscribe('/room')->{successful}, "session $i: subscribe");
    push @clients, $c;
}

my %by_shard;
for my $c (@clients) {
    my $p = shard_prefix($c->client_id);
    push @{ $by_shard{$p} }, crc32($c->client_id) % 3;
}
is(scalar(keys %by_shard), 3, 'the sessions are spread over 3 prefixes');
like($_, qr/^\Q$P\E\d+:$/, "a shard's prefix: $_") for sort keys %by_shard;
is_deeply([ map { my %k = map { $_ => 1 } @$_; scalar keys %k }
            values %by_shard ],
          [ 1, 1, 1 ], 'a shard holds the sessions of one CRC32(id) % 3');

# a publish from a session reaches every shard: 5 messages, each once,
# in order, whichever nginx the subscriber is on

$_->connect(advice => { timeout => 0 }) for @clients;
for my $n (1 .. 5) {
    ok($clients[0]->publish('/room', { n => $n })->{successful},
       "publish $n");
}
is_deeply(missing_deliveries(\@clients, '/room', 1 .. 5), [],
          'every session got 1..5 once, in order');

# a publisher whose session is unknown: refused, and no shard delivers

my $forged = $servers[0]->client;
$forged->client_id('0' x length $clients[0]->client_id);
my $r = $forged->publish('/room', { n => 'forged' });
ok(!$r->{successful}, 'an unknown publisher is refused');
is($r->{error}, '402::session_unknown', 'as an unknown session');
$clients[0]->publish('/room', { n => 6 });
is_deeply(missing_deliveries(\@clients, '/room', 6), [],
          'nobody got the unknown publisher\'s message');

# a websocket subscriber, held by its worker, in whichever shard

my ($ws, $wid) = held_session($servers[1]->port, '/room');
ok(until_true(sub { $redis->is_held($wid, '/room', shard_prefix($wid)) }),
   'the websocket session is held: its connect parked');

# the publisher location: 3 messages; each reaches 31 sessions

my ($status, $res) = api($servers[0], method => 'POST', uri => '/publish',
                         body => encode_json([ map { { channel => '/room',
                                                       data => { n => $_ } } }
                                               7 .. 9 ]));
is($status, 200, 'the publisher location publishes');
is_deeply([ map { $_->{sessions} } @$res ], [ 31, 31, 31 ],
          'each message reached the sessions of the 3 shards');

my @ws_got;
while (@ws_got < 3) {
    my $m = $ws->recv_json(timeout => 5) or last;
    push @ws_got, map { $_->{data}{n} } grep { $_->{channel} eq '/room' } @$m;
}
is_deeply(\@ws_got, [ 7, 8, 9 ], 'the websocket got them, in order');
is_deeply(missing_deliveries(\@clients, '/room', 7 .. 9), [],
          'every long-polling session got 7..9 once');

($status, $res) = api($servers[1], method => 'GET',
                      uri => '/publish?channel=/room');
is_deeply($res, { channel => '/room', subscribers => 31 },
          'the subscribers of /room, counted over the shards');

# a user's sessions share a shard: counted and reached as one

my @ann = map {
    my $c = $servers[$_ % 2]->client;
    ok($c->handshake(ext => { as => "ann$run" })->{successful},
       "ann: session $_");
    $c->connect(advice => { timeout => 0 });
    $c
} 1 .. 4;
my %ann_shards = map { shard_prefix($_->client_id) => 1 } @ann;
is(scalar(keys %ann_shards), 1, 'the user\'s 4 sessions are in one shard');

for my $server (@servers) {
    ($status, $res) = api($server, method => 'GET',
                          uri => "/publish?user=ann$run");
    is_deeply($res, { user => "ann$run", sessions => 4 },
              'ann has 4 sessions, seen from ' . $server->port);
}

($status, $res) = api($servers[1], method => 'POST', uri => '/publish',
                      body => encode_json({ channel => '/dm', data => 'hi',
                                            user => "ann$run" }));
is_deeply([ map { $_->{sessions} } @$res ], [ 4 ], 'delivered to 4 sessions');
is_deeply(missing_deliveries(\@ann, '/dm', 'hi'), [],
          'each of ann\'s sessions got it once');

# what the shards leave in Redis expires

my @no_ttl = grep { $redis->cmd('PTTL', $_) == -1 } $redis->scan("${P}*");
is_deeply(\@no_ttl, [], 'every key has a TTL');

$ws->close;
$_->stop for @servers;
$app->stop;

done_testing();
