# Lazy channels with the Redis engine, across hosts: a lazy message
# published on B reaches the connects held on A once the lazy timeout is
# over, not before, and without B: its deadline is kept in Redis and
# swept by every worker, so the host that published may die meanwhile.
# A message that is not lazy takes the lazy ones with it, at once.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::FreshClient;
use Time::HiRes qw(time sleep);

plan skip_all => 'several workers: not under valgrind' if use_valgrind();

my $redis = start_redis();

my @servers = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        log_level => 'info',
        http_config => $redis->engine_conf,
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 10s;
        bayeux_lazy_channel /lazy/**;
        bayeux_max_lazy_timeout 1500ms;
    }
CONF
    )->start
} 1 .. 2;

my ($A, $B) = map { $_->port } @servers;

my @subs = map { Test::Bayeux::FreshClient->new(ports => [ $A ]) } 1 .. 4;
my $pub = Test::Bayeux::FreshClient->new(ports => [ $B ]);

for my $c (@subs) {
    ok($c->handshake->{successful}, 'handshake on A');
    ok($c->subscribe('/**')->{successful}, 'subscribe on A');
    my $r = $c->connect(advice => { timeout => 0 });
    ok($r->{reply} && $r->{reply}{successful}, 'first connect on A');
}
ok($pub->handshake->{successful}, 'publisher handshake on B');

# a lazy message and one that is not: together, at once, in order

my @h = map { $_->connect_start } @subs;
sleep 0.3;
ok($pub->publish('/lazy/a', 'one')->{successful}, 'lazy publish on B');
sleep 0.5;
ok(!grep({ $_->ready } @h), 'no held connect on A answered at 0.5 s');
my $t0 = time;
ok($pub->publish('/now', 'two')->{successful}, 'publish on B');
for my $k (0 .. $#subs) {
    my $r = $subs[$k]->connect_finish($h[$k], timeout => 3);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'one', 'two' ],
              "subscriber $k: both, in order");
}
cmp_ok(time - $t0, '<', 1, 'at once');

# the lazy timeout, with the host that published killed meanwhile

@h = map { $_->connect_start } @subs;
sleep 0.3;
$t0 = time;
ok($pub->publish('/lazy/b', 'three')->{successful}, 'lazy publish on B');
$servers[1]->kill;
ok(!$servers[1]->running, 'B killed with SIGKILL');
sleep 0.5;
ok(!grep({ $_->ready } @h), 'no held connect on A answered at 0.5 s');
for my $k (0 .. $#subs) {
    my $r = $subs[$k]->connect_finish($h[$k], timeout => 3);
    ok(!$r->{timed_out}, "subscriber $k: answered by 3 s");
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'three' ],
              "subscriber $k: the lazy message");
}
cmp_ok(time - $t0, '>=', 1.2, 'after the lazy timeout');

$_->stop for $servers[0];

done_testing();
