# Session-end notices with the Redis engine across hosts: two nginx
# instances (two workers each) on one Redis, both with
# bayeux_disconnect_request to one application.  Sessions made on either
# expire: each is told to the application exactly once, by whichever
# worker of whichever host sweeps first, also when the host that served
# the session is gone (stopped).  A user's presence goes to subscribers
# on both hosts.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::App;
use Time::HiRes qw(time sleep);

plan skip_all => 'several workers: not under valgrind' if use_valgrind();

my $redis = start_redis();
my $app = Test::Bayeux::App->new;
my $port = $app->port;

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        log_level => 'info',
        http_config => $redis->engine_conf(prefix => '"notices:"'),
        config => <<"CONF",
    location /cometd {
        bayeux;
        bayeux_interval 0;
        bayeux_max_interval 1s;
        bayeux_timeout 1s;
        bayeux_disconnect_request /_app/disconnect;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$port;
    }
CONF
    )->start
} 1 .. 2;

# sessions on both hosts, half of them disconnected, the rest left to expire
my (%made, %disconnected);

for my $i (1 .. 20) {
    my $server = $servers[$i % 2];
    my $c = $server->client;
    ok($c->handshake->{successful}, "session $i: handshake");
    $made{$c->client_id} = 1;
    if ($i % 4 == 0) {
        ok($c->disconnect->{successful}, "session $i: disconnect");
        $disconnected{$c->client_id} = 1;
    }
}

# the host that made half of them goes away before they expire
$servers[1]->stop;

my @notices;
my $deadline = time + 20;

while (time < $deadline) {
    @notices = map { $_->{json} }
               grep { $_->{path} eq '/_app/disconnect' } @{ $app->requests };
    last if @notices >= 20;
    sleep 0.2;
}

# a while more: nothing told twice
sleep 2;
@notices = map { $_->{json} }
           grep { $_->{path} eq '/_app/disconnect' } @{ $app->requests };

my %told;
$told{$_->{clientId}}++ for @notices;

is(scalar(keys %told), 20, 'every session told');
is(scalar(grep { $_ != 1 } values %told), 0, 'each exactly once')
    or diag explain \%told;
is(scalar(grep { !$made{$_} } keys %told), 0, 'only sessions that were made');

for my $n (@notices) {
    my $want = $disconnected{$n->{clientId}} ? 'disconnect' : 'expired';
    is($n->{reason}, $want, "$want: its reason");
}

$servers[0]->stop;
$app->stop;

done_testing();
