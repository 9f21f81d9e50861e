# Load: 100 subscribers on one channel, 10 publishers of 1,000 messages
# each (10,000 messages, a million deliveries), two workers: nothing is
# lost, nothing is delivered twice, and every subscriber sees the messages
# of each publisher in the order they were published.
#
# TEST_BAYEUX_LOAD_SCALE=0.1 runs a tenth of it (e.g. on a slow machine).

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::Load;

plan skip_all => 'load test: not under valgrind' if use_valgrind();

my $scale = $ENV{TEST_BAYEUX_LOAD_SCALE} // 1;
my $subscribers = 100;
my $publishers = 10;
my $messages = int(1000 * $scale) || 1;

my $redis = start_redis();

my $server = Test::Nginx::Bayeux::Server->new(
    workers => 2,
    log_level => 'warn',
    main_config => 'worker_rlimit_nofile 4096;',
    http_config => $redis->engine_conf(command_timeout => '10s'),
    config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 10s;
        bayeux_max_queue 0;
        bayeux_max_queue_size 0;
        keepalive_requests 100000;
    }
CONF
)->start;

my $res = Test::Bayeux::Load::run(
    ports => [ $server->port ],
    subscribers => $subscribers,
    publishers => $publishers,
    messages => $messages,
    batch => 25,
    timeout => 60,
);

my $total = $publishers * $messages;

note(sprintf "%d messages to %d subscribers: %d deliveries in %.1f s "
             . "(%.0f/s), %d HTTP requests",
     $total, $subscribers, $res->{delivered}, $res->{elapsed},
     $res->{delivered} / ($res->{elapsed} || 1), $res->{requests});

is(scalar @{ $res->{errors} }, 0, 'no error reply')
    or diag(join "\n", @{ $res->{errors} });
ok($res->{complete}, "every subscriber got all $total messages")
    or diag('got: ' . join(' ', @{ $res->{per_subscriber} }));
is($res->{gaps}, 0, 'no message lost: the order of each publisher kept');
is($res->{duplicates}, 0, 'no message delivered twice');
is($res->{delivered}, $total * $subscribers, 'deliveries: all of them');
cmp_ok($res->{elapsed}, '<', 60, 'within a minute');

# what is left in Redis: the sessions, with empty queues
my @queues = $redis->scan('bayeux:q:*');
my $queued = 0;
$queued += $redis->cmd('LLEN', $_) for @queues;
is($queued, 0, 'no message left in a queue');

$server->stop;
unlike($server->error_log_text, qr/\[(alert|crit|emerg|error)\]/,
       'no error in the error log');

done_testing();
