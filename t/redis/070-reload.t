# "nginx -s reload" (SIGHUP) under traffic loses no session and no
# message: subscribers and publishers keep going while the workers are
# replaced, twice; the old workers let go of their parked connects, the
# clients' next requests land on the new workers, whose sessions are in
# Redis.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::Load;
use Time::HiRes qw(time sleep);

plan skip_all => 'reload needs a master process: not under valgrind'
    if use_valgrind();

my $redis = start_redis();

my $server = Test::Nginx::Bayeux::Server->new(
    workers => 2,
    log_level => 'info',
    http_config => $redis->engine_conf,
    config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_queue 0;
        bayeux_max_queue_size 0;
    }
CONF
)->start;

my @before = $server->worker_pids;
my @reloads;

my $res = Test::Bayeux::Load::run(
    ports => [ $server->port ],
    subscribers => 20,
    publishers => 4,
    messages => 400,
    batch => 4,
    pause => 0.04,
    keepalive => 0,
    timeout => 60,
    on_tick => sub {
        my ($t) = @_;
        if (@reloads < 2 && $t > 0.5 + 1.5 * @reloads) {
            $server->signal('HUP');
            push @reloads, $t;
        }
    },
);

is(scalar @reloads, 2, 'two reloads happened during the traffic')
    or diag("the traffic ended after $res->{elapsed} s");

note(sprintf "%d deliveries in %.1f s, %d requests, %d connections "
             . "closed by the server", $res->{delivered}, $res->{elapsed},
     $res->{requests}, $res->{reopened});

my @errors = @{ $res->{errors} };
is_deeply([ grep { /402/ } @errors ], [], 'no session was lost (no 402)');
is_deeply(\@errors, [], 'no error at all');
ok($res->{complete}, 'every subscriber got every message')
    or diag('got: ' . join(' ', @{ $res->{per_subscriber} }));
is($res->{gaps}, 0, 'nothing lost, order kept');
is($res->{duplicates}, 0, 'nothing twice');

# every session still works on the new workers
my $alive = 0;
for my $i (0 .. $#{ $res->{ids} }) {
    my $c = $server->client(cookie_jar => $res->{jars}[$i]);
    $c->client_id($res->{ids}[$i]);
    my $r = $c->connect(advice => { timeout => 0 });
    if ($r->{reply} && $r->{reply}{successful}) {
        $alive++;
    } else {
        diag explain $r->{reply} // $r->{error};
    }
}
is($alive, scalar @{ $res->{ids} }, 'every session is still known');

# the workers were replaced
my $deadline = time + 10;
my @after;
while (time < $deadline) {
    @after = $server->worker_pids;
    last if @after == 2 && !grep { my $p = $_; grep { $_ == $p } @before }
                                @after;
    sleep 0.1;
}
ok(@after == 2 && !grep({ my $p = $_; grep { $_ == $p } @before } @after),
   'the old workers are gone, new ones serve');

$server->stop;
my $log = $server->error_log_text;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/is unavailable/, 'Redis was never reported unavailable');
like($log, qr/reconfiguring/, 'the log shows the reloads');

done_testing();
