# Two nginx instances (two ports, two workers each) on one Redis are one
# Bayeux server: each request of a client goes to the other instance than
# the one before (handshake on A, subscribe on B, connect on A, publish on
# B, ...), and every message is delivered once, in order.

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
        bayeux_timeout 5s;
        add_header X-Worker $pid always;
    }
CONF
    )->start
} 1 .. 2;

my ($A, $B) = map { $_->port } @servers;

my @subs = map { Test::Bayeux::FreshClient->new(ports => [ $A, $B ]) } 1 .. 6;
my @pubs = map { Test::Bayeux::FreshClient->new(ports => [ $B, $A ]) } 1 .. 2;

for my $c (@subs) {
    ok($c->handshake->{successful}, 'handshake on A');
    ok($c->subscribe('/chat/**')->{successful}, 'subscribe on B');
    my $r = $c->connect;
    ok($r->{reply} && $r->{reply}{successful}, 'first connect on A');
}
ok($_->handshake->{successful}, 'publisher handshake on B') for @pubs;

my $rounds = 25;

for my $i (1 .. $rounds) {
    my @h = map { $_->connect_start } @subs;
    sleep 0.02;
    for my $p (0 .. $#pubs) {
        my $r = $pubs[$p]->publish("/chat/room/$p", { p => $p, i => $i });
        ok($r && $r->{successful}, "publisher $p: message $i");
    }
    for my $k (0 .. $#subs) {
        my $r = $subs[$k]->connect_finish($h[$k], timeout => 5);
        ok(!$r->{timed_out} && $r->{reply} && $r->{reply}{successful},
           "round $i: subscriber $k connect answered")
            or diag explain $r;
    }
}

for my $k (0 .. $#subs) {
    my $c = $subs[$k];
    my @d = @{ $c->deliveries };
    my $want = $rounds * @pubs;
    push @d, @{ $c->wait_deliveries(count => $want - @d, timeout => 5) }
        if @d < $want;
    for my $p (0 .. $#pubs) {
        my @seq = map { $_->{data}{i} } grep { $_->{data}{p} == $p } @d;
        is_deeply(\@seq, [ 1 .. $rounds ],
                  "subscriber $k: the messages of publisher $p once, in order");
    }
    my %ports = map { (split m{/})[0] => 1 } $c->served;
    is(scalar keys %ports, 2, "subscriber $k used both instances");
}

# a session moves from one instance to the other between any two requests
{
    my $c = Test::Bayeux::FreshClient->new(ports => [ $A, $B ]);
    $c->handshake;                                  # A
    $c->subscribe('/x');                            # B
    my $h = $c->connect_start;                      # A: first, at once
    $c->connect_finish($h);
    $h = $c->connect_start;                         # B: parked
    sleep 0.1;
    my $p = Test::Bayeux::FreshClient->new(ports => [ $A ]);
    $p->handshake;
    $p->publish('/x', 'from A');
    my $r = $c->connect_finish($h, timeout => 3);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'from A' ],
              'published on A, delivered by a connect parked on B');
    cmp_ok($r->{elapsed}, '<', 2, '... at once');
}

$_->stop for @servers;

for my $s (@servers) {
    unlike($s->error_log_text, qr/\[(alert|crit|emerg)\]/,
           'no alert in the error log of ' . $s->port);
}

done_testing();
