# Redis Cluster: requests wait out a migration of the endpoint's slot.
# While the slot migrates, Redis answers ASK to every script and runs
# none; a script cannot follow ASK (the keys it reads without declaring
# them may not have moved yet), so handshakes, subscribes and publishes
# wait, in order, and go on once the new primary serves the slot, or the
# migration is called off: answered successfully, each message delivered
# once and in order.  /meta/connect waits too; when the slot moved, the
# worker's link to the new primary has a new notification channel, which
# the connect that waited names (a session held for the old one would be
# held for no one).  A migration that outlasts
# bayeux_redis_command_timeout fails what waited for it with
# 503::engine_unavailable, as an outage does.  t/redis/130-cluster.t
# migrates the slot under a stream of acknowledged publishes.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use JSON::PP ();
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::AckStream;
use Test::Bayeux::Redis qw(missing_deliveries);
use Test::Bayeux::RedisCluster;
use Time::HiRes qw(time sleep);

my $cluster = start_redis_cluster(primaries => 3, replicas => 0);
my $slot = $cluster->keyslot('{bayeux:}');

my $server = Test::Nginx::Bayeux::Server->new(
    workers => 1,
    log_level => 'info',
    http_config => $cluster->engine_conf(connect_timeout => '1s',
                                         command_timeout => '2s'),
    config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_interval 60s;
    }
CONF
)->start;

my @subscribers = map {
    my $c = $server->client;
    ok($c->handshake->{successful}, "subscriber $_: handshake") or BAIL_OUT;
    ok($c->subscribe('/feed')->{successful}, "subscriber $_: subscribe");
    $c;
} 1 .. 3;
my $pub = $server->client;
ok($pub->handshake->{successful}, 'publisher: handshake') or BAIL_OUT;
my $acker = $server->client;
ok($acker->handshake(ext => { ack => JSON::PP::true })->{successful},
   'a consumer with the ack extension: handshake') or BAIL_OUT;
ok($acker->subscribe('/feed')->{successful}, '... subscribed');
my $stream = Test::Bayeux::AckStream->new(publisher => $pub,
                                          consumer => $acker);

sub primary_other_than {
    my ($node) = @_;
    my ($to) = grep { $_ != $node } $cluster->primaries;
    return $to;
}

# the slot marked as migrating to another primary, no key moved yet:
# (its primary, the other)
sub start_migration {
    my $to = primary_other_than($cluster->slot_node($slot));
    return ($cluster->start_migration($slot, $to), $to);
}

#
# the slot migrated, keys moved in batches, a publish started after each
#

my @acked;
my @started;
my $offset = $server->error_log_offset;
my $to = primary_other_than($cluster->slot_node($slot));
my $late = $server->client;
ok($late->handshake->{successful}, 'a session not connected yet');
ok($late->subscribe('/feed')->{successful}, '... subscribed');
my $late_connect;
my $moved = $cluster->migrate_slot($slot, $to, batch => 2, between => sub {
    push @started, $stream->turn_start;
    $late_connect //= $late->connect_start;
    sleep 0.05;
});
ok($moved > 4, "$moved keys moved to port " . $to->port . ', a publish '
               . 'started after each batch');
is_deeply([ $stream->turn_finish(\@acked, @started) ],
          [ ('ok') x @started ],
          'the ' . scalar(@started) . ' publishes made during the '
          . 'migration succeed');
my @all = map { $_->[0] } @acked;
is_deeply(missing_deliveries(\@subscribers, '/feed', @all), [],
          'every subscriber gets them once, in order');
$stream->drain(within => 10, wait => 3);
$stream->check('migration', 1, \@acked, 'the ack consumer gets them all');
my $log = substr($server->error_log_text, $offset);
like($log, qr/answered "ASK \d+ [\d.:]+": requests wait until a primary serves the slot/,
     'the log says requests wait for the migration');
like($log, qr/serves the slot: the \d+ requests that waited go on/,
     '... and when they go on');

# the first connect of a session, made while the slot migrated
{
    my $r = $late->connect_finish($late_connect, timeout => 5);
    ok($r->{reply} && $r->{reply}{successful},
       'a /meta/connect made during the migration waits for it, and '
       . 'succeeds');
    my $key = '{bayeux:}s:' . $late->client_id;
    my $w = $cluster->cmd_key($key, 'HGET', $key, 'w') // '';
    my $chans = $to->cmd('PUBSUB', 'SHARDCHANNELS', '{bayeux:}*');
    ok($w ne '' && grep({ $_ eq $w } @$chans),
       "... its session is held for the worker's channel on the new "
       . 'primary') or diag("w '$w', channels @$chans");
    is_deeply(missing_deliveries([ $late ], '/feed', 1 .. $stream->seq), [],
              '... and its session gets every publish once, in order');
    my $h = $late->connect_start;
    sleep 0.3;
    is($stream->turn(\@acked), 'ok', 'a publish after it');
    is_deeply(missing_deliveries(\@subscribers, '/feed', $stream->seq), [],
              '... which every subscriber gets');
    $r = $late->connect_finish($h, timeout => 5);
    ok(grep({ $_->{data} == $stream->seq } @{ $r->{deliveries} }),
       '... and which releases the session\'s parked connect');
    cmp_ok($r->{elapsed}, '<', 1.5, '... at once, not at its timeout');
}

#
# a migration called off: what waited runs on the old primary
#

{
    my $fresh = $server->client;
    ok($fresh->handshake->{successful}, 'a session not connected yet');
    my @nodes = start_migration();
    my $gone = $stream->turn_start;
    my $p = $stream->turn_start;
    my $newcomer = $server->client;
    my $hs = $newcomer->post_start('/handshake',
        [ { channel => '/meta/handshake', version => '1.0',
            supportedConnectionTypes => ['long-polling'] } ],
        new_connection => 1);
    my $fc = $fresh->connect_start;
    sleep 0.8;
    ok(!$p->[2]->ready, 'a publish made while the slot migrates waits');
    ok(!$hs->ready, '... and a handshake');
    ok(!$fc->ready, '... and a /meta/connect');
    # its client goes away while it waits: it still runs, and is answered
    # to no one
    $pub->abandon($gone->[2]);
    sleep 0.2;
    $cluster->cancel_migration($slot, @nodes);
    is_deeply([ $stream->turn_finish(\@acked, $p) ], ['ok'],
              'once the migration is called off, the publish succeeds');
    my $res = $newcomer->post_finish($hs, timeout => 5);
    my ($reply) = @{ $res->{messages} || [] };
    ok($reply && $reply->{successful}, '... and the handshake');
    my $r = $fresh->connect_finish($fc, timeout => 5);
    ok($r->{reply} && $r->{reply}{successful}, '... and the connect');
    is_deeply(missing_deliveries(\@subscribers, '/feed', $gone->[0],
                                 $stream->seq), [],
              'every subscriber gets both publishes once, the one whose '
              . 'client went away too');
}

#
# a migration that outlasts bayeux_redis_command_timeout
#

{
    $offset = $server->error_log_offset;
    my @nodes = start_migration();
    my $held = $subscribers[1]->connect_start;
    my $t0 = time;
    my ($status) = $stream->turn_finish(\@acked, $stream->turn_start);
    my $took = time - $t0;
    my $hr = $subscribers[1]->connect_finish($held, timeout => 5);
    ok($hr->{reply} && $hr->{reply}{successful},
       'meanwhile the connect of a session its worker holds is held, and '
       . 'answered as usual');
    is($status, '503::engine_unavailable', 'a publish waiting longer than '
       . 'the command timeout fails, as in an outage');
    cmp_ok($took, '>=', 1.8, '... after the timeout (2s)');
    cmp_ok($took, '<', 4, '... not much later');
    $log = substr($server->error_log_text, $offset);
    like($log, qr/no primary served the slot within bayeux_redis_command_timeout: 1 requests that waited get "503::engine_unavailable"/,
         'the log says so');
    $cluster->cancel_migration($slot, @nodes);
    is($stream->turn(\@acked), 'ok', 'publishes succeed once the migration '
       . 'is called off');
    is_deeply(missing_deliveries(\@subscribers, '/feed', $stream->seq), [],
              'every subscriber gets it');
    $stream->drain(within => 10, wait => 3);
    $stream->check('after', 1, \@acked,
                   'the ack consumer gets every acknowledged publish');
}

$server->stop;
$server->check_crashes;
done_testing;
