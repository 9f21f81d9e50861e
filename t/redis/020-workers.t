# Four workers are one Bayeux server: every request of every client goes
# on a new connection (the listening socket has "reuseport", so the kernel
# spreads them over the workers), and every message is delivered once, in
# order.  Also: a connect parked on one worker is superseded by a connect
# on another, and ended by a disconnect on a third.

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
my $port = Test::Nginx::Bayeux::Server::free_port();

my $server = Test::Nginx::Bayeux::Server->new(
    workers => 4,
    log_level => 'info',
    http_config => $redis->engine_conf . <<"CONF",
    server {
        listen 127.0.0.1:$port reuseport;
        location /cometd {
            bayeux;
            bayeux_timeout 5s;
            add_header X-Worker \$pid always;
        }
    }
CONF
    config => 'location / { return 404; }',
);
$server->start;

sub fresh { Test::Bayeux::FreshClient->new(port => $port, @_) }

my @subs = map { fresh() } 1 .. 8;
my $pub = fresh();

for my $c (@subs, $pub) {
    my $r = $c->handshake;
    ok($r && $r->{successful}, 'handshake') or diag explain $r;
}
for my $c (@subs) {
    my $r = $c->subscribe('/room/*');
    ok($r && $r->{successful}, 'subscribe');
    $r = $c->connect(timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, 'first connect');
}

my $messages = 30;
my %got;

for my $i (1 .. $messages) {
    my @h = map { $_->connect_start } @subs;
    # the connects must be parked before the publish: a short pause lets
    # them reach the workers
    sleep 0.02;
    my $p = $pub->publish('/room/a', { i => $i });
    ok($p && $p->{successful}, "publish $i") or diag explain $p;
    for my $k (0 .. $#subs) {
        my $r = $subs[$k]->connect_finish($h[$k], timeout => 5);
        ok(!$r->{timed_out} && $r->{reply} && $r->{reply}{successful},
           "round $i: connect $k answered")
            or diag explain $r;
    }
}

for my $k (0 .. $#subs) {
    my $c = $subs[$k];
    my @d = map { $_->{data}{i} } @{ $c->deliveries };
    if (@d < $messages) {
        push @d, map { $_->{data}{i} }
                 @{ $c->wait_deliveries(count => $messages - @d,
                                        timeout => 5) };
    }
    is_deeply(\@d, [ 1 .. $messages ],
              "subscriber $k: every message once, in order");
}

# the requests really were served by several workers
my %workers;
my $mixed = 0;
for my $c (@subs) {
    my %mine;
    for my $s ($c->served) {
        my ($w) = $s =~ m{/(\d+)$} or next;
        $workers{$w}++;
        $mine{$w}++;
    }
    $mixed++ if keys %mine > 1;
}
note('requests per worker: '
     . join(', ', map { "$_: $workers{$_}" } sort keys %workers));
cmp_ok(scalar keys %workers, '>=', 3, 'at least 3 of the 4 workers served');
is($mixed, scalar @subs, 'each client was served by several workers');

# supersede and disconnect across workers

{
    my $c = fresh();
    $c->handshake;
    $c->connect;
    my $first = $c->connect_start;
    sleep 0.2;
    my $second = $c->connect_start;
    my $r1 = $c->connect_finish($first, timeout => 3);
    ok(!$r1->{timed_out} && $r1->{reply} && $r1->{reply}{successful},
       'the older connect is answered when a newer one arrives');
    cmp_ok($r1->{elapsed}, '<', 2, '... at once, not at its timeout');
    sleep 0.2;
    my $d = fresh(cookie_jar => $c->cookie_jar);
    $d->client_id($c->client_id);
    my $dr = $d->disconnect;
    ok($dr && $dr->{successful}, 'disconnect from another connection');
    my $r2 = $c->connect_finish($second, timeout => 3);
    ok(!$r2->{timed_out}, 'the parked connect is answered by the disconnect');
    cmp_ok($r2->{elapsed}, '<', 2, '... at once');
    is($r2->{reply} && $r2->{reply}{advice} && $r2->{reply}{advice}{reconnect},
       'none', '... with advice reconnect: none');
    my $again = $c->connect(timeout => 3);
    is($again->{reply} && $again->{reply}{error}, '402::session_unknown',
       'the session is gone');
}

$server->stop;

my $log = $server->error_log_text;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');
unlike($log, qr/is unavailable/, 'Redis was never unavailable');

done_testing();
