# Failover: an nginx is killed (SIGKILL) while its clients hold connects;
# the clients go on with the other instance, with the same clientId, and
# receive what was published meanwhile, once and in order.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

plan skip_all => 'SIGKILL of a master: not under valgrind' if use_valgrind();

my $redis = start_redis();

my ($A, $B) = map {
    Test::Nginx::Bayeux::Server->new(
        workers => 2,
        log_level => 'info',
        http_config => $redis->engine_conf,
        config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 20s;
        bayeux_max_interval 30s;
    }
CONF
    )->start
} 1 .. 2;

my @clients = map { $A->client } 1 .. 5;
for my $c (@clients) {
    ok($c->handshake->{successful}, 'handshake on A');
    ok($c->subscribe('/feed')->{successful}, 'subscribe on A');
    ok($c->connect->{reply}{successful}, 'first connect on A');
}

my $pub = $B->client;
ok($pub->handshake->{successful}, 'publisher on B');

# a first message goes through A's held connects
my @h = map { $_->connect_start } @clients;
sleep 0.2;
ok($pub->publish('/feed', 0)->{successful}, 'message 0');
for my $i (0 .. $#clients) {
    my $r = $clients[$i]->connect_finish($h[$i], timeout => 5);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [0],
              "client $i: message 0 through A");
}

# the clients hold connects on A again; A dies
@h = map { $_->connect_start } @clients;
sleep 0.2;
$A->kill;
ok(!$A->running, 'A killed with SIGKILL');

for my $i (0 .. $#clients) {
    my $r = $clients[$i]->connect_finish($h[$i], timeout => 5);
    ok(!defined $r->{status}, "client $i: its connect on A failed");
}

# meanwhile messages are published on B, while no client has a connect
for my $n (1 .. 5) {
    ok($pub->publish('/feed', $n)->{successful}, "message $n while A is down");
}

# the clients come to B with their clientId
for my $i (0 .. $#clients) {
    my $c = $B->client(cookie_jar => $clients[$i]->cookie_jar);
    $c->client_id($clients[$i]->client_id);
    my $r = $c->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful},
       "client $i: the session is known to B");
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 1 .. 5 ],
              "client $i: what was queued, once, in order");
    $clients[$i] = $c;
}

# and go on there
@h = map { $_->connect_start } @clients;
sleep 0.2;
ok($pub->publish('/feed', 6)->{successful}, 'message 6');
for my $i (0 .. $#clients) {
    my $r = $clients[$i]->connect_finish($h[$i], timeout => 5);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [6],
              "client $i: and what comes next, at once");
    cmp_ok($r->{elapsed}, '<', 2, "client $i: ... without waiting");
}

# the sessions A held are not held by anyone now: they expire normally,
# and nothing else of A is left in Redis
$B->stop;
unlike($B->error_log_text, qr/\[(alert|crit|emerg)\]/, 'B: no alert');

my @keys = $redis->scan('bayeux:*');
ok(!grep({ !/^bayeux:(?:[sqScHlt]:|n$)/ } @keys),
   'only session, channel and log keys')
    or diag(join(' ', @keys));
ok(!grep({ $redis->cmd('PTTL', $_) < 0 } @keys), 'every key expires');

done_testing();
