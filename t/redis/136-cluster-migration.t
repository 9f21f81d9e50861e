# Redis Cluster: requests wait out a migration of the endpoint's slot.
# While the slot migrates, Redis answers ASK to every script and runs
# none; a script cannot follow ASK while some keys are still on the old
# node (the keys it reads without declaring them would look missing), so
# handshakes, subscribes and publishes wait, in order, and go on once
# the new primary serves the slot, or the migration is called off:
# answered successfully, each message delivered once and in order.
# /meta/connect waits too; when the slot moved, the worker's link to the
# new primary has a new notification channel, which the connect that
# waited names (a session held for the old one would be held for no
# one).  Once the old node holds none of the slot's keys, requests
# follow ASK to the new one (ASKING) without waiting for the migration's
# last step.  A migration that outlasts bayeux_redis_command_timeout
# with keys left to move fails what waited for it with
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

my $location = <<'CONF';
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_interval 60s;
    }
CONF

my $server = Test::Nginx::Bayeux::Server->new(
    workers => 1,
    log_level => 'info',
    http_config => $cluster->engine_conf(connect_timeout => '1s',
                                         command_timeout => '2s'),
    config => $location,
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

#
# every key moved, the slot not yet given to the new primary (the last
# step of the migration late): the old primary holds none of its keys,
# so requests follow ASK to the new one instead of waiting
#

{
    $offset = $server->error_log_offset;
    my $from = $cluster->slot_node($slot);
    my $to = primary_other_than($from);
    my (@during, $newcomer, $parked, $left);
    my $first = $stream->seq + 1;
    $cluster->migrate_slot($slot, $to, before_node => sub {
        $left = $from->cmd('CLUSTER', 'COUNTKEYSINSLOT', $slot);
        my $t0 = time;
        push @during, [ $stream->turn(\@acked), time - $t0 ];
        $newcomer = $server->client;
        push @during, [ $newcomer->handshake->{successful} ? 'ok' : 'failed',
                        0 ];
        push @during, [ $newcomer->subscribe('/feed')->{successful}
                        ? 'ok' : 'failed', 0 ];
        # a parked connect, released by a notification from the new node
        $newcomer->connect;
        my $h = $newcomer->connect_start;
        sleep 0.3;
        push @during, [ $stream->turn(\@acked), 0 ];
        $parked = $newcomer->connect_finish($h, timeout => 5);
        # more than the command timeout (2s): waiting would have failed
        sleep 2.2;
        push @during, [ $stream->turn(\@acked), 0 ];
    });
    is($left, 0, 'every key moved, the slot still migrating');
    is_deeply([ map { $_->[0] } @during ], [ ('ok') x 5 ],
              'meanwhile publishes, a handshake and a subscribe succeed')
        or diag(explain(\@during));
    cmp_ok($during[0][1], '<', 1.5, '... the first at once, not after the '
           . 'command timeout');
    ok($parked->{reply} && $parked->{reply}{successful}
       && grep({ $_->{data} == $acked[-2][0] } @{ $parked->{deliveries} }),
       'a parked /meta/connect is released by a publish meanwhile');
    cmp_ok($parked->{elapsed}, '<', 1.5, '... at once')
        or diag(explain($parked));
    my $key = '{bayeux:}s:' . $newcomer->client_id;
    is_deeply([ [ $to->scan($key) ], [ $from->scan('*bayeux:*') ] ],
              [ [ $key ], [] ],
              'the new session is on the new primary, no key on the old');
    my $log = substr($server->error_log_text, $offset);
    like($log, qr/the slot's keys have all moved to [\d.]+:\d+ before it serves the slot: requests follow ASK there/,
         'the log says requests follow ASK');
    unlike($log, qr/no primary served the slot within/,
           '... and no request waited out the command timeout');
    ok($server->wait_for_log(qr/serves the slot: requests no longer follow ASK/,
                             offset => $offset, timeout => 5),
       'once the slot is given, the log says requests no longer follow ASK');
    is($stream->turn(\@acked), 'ok', 'a publish after it');
    is_deeply(missing_deliveries(\@subscribers, '/feed',
                                 $first .. $stream->seq),
              [], 'every subscriber gets every publish once, in order');
    is_deeply(missing_deliveries([ $newcomer ], '/feed',
                                 $acked[-3][0] .. $stream->seq),
              [], '... and the session made meanwhile, those after it');
    $stream->drain(within => 10, wait => 3);
    $stream->check('following ASK', 1, \@acked,
                   'the ack consumer gets every acknowledged publish');
}

#
# an ACL user that may not send ASKING: its requests wait for the
# migration's last step instead of following ASK
#

{
    for my $p ($cluster->primaries) {
        $p->cmd('ACL', 'SETUSER', 'bayeux', 'on', '>secret', '~*', '&*',
                '+@all', '-asking');
    }
    (my $url = $cluster->url) =~ s{//}{//bayeux:secret@};
    my $acl_server = Test::Nginx::Bayeux::Server->new(
        workers => 1,
        log_level => 'info',
        http_config => "bayeux_engine redis;\n"
                       . "bayeux_redis_url $url;\n"
                       . "bayeux_redis_prefix acl:;\n"
                       . "bayeux_redis_connect_timeout 1s;\n"
                       . "bayeux_redis_command_timeout 5s;\n",
        config => $location,
    )->start;
    my $aslot = $cluster->keyslot('{acl:}');
    my $sub = $acl_server->client;
    ok($sub->handshake->{successful}, 'as the ACL user: a subscriber');
    ok($sub->subscribe('/feed')->{successful}, '... subscribed');
    my $apub = $acl_server->client;
    ok($apub->handshake->{successful}, '... and a publisher');
    my $aoffset = $acl_server->error_log_offset;
    my ($waited, $refused);
    my $h;
    $cluster->migrate_slot($aslot,
                           primary_other_than($cluster->slot_node($aslot)),
                           before_node => sub {
        $h = $apub->publish_start('/feed', 'acl', _opts => {
            new_connection => 1 });
        $refused = $acl_server->wait_for_log(qr/refused ASKING/,
                                             offset => $aoffset,
                                             timeout => 2);
        sleep 0.5;
        $waited = !$h->ready;
    });
    ok($refused, 'the refused ASKING is logged');
    ok($waited, '... and a publish waits while the slot migrates');
    my $r = $apub->publish_finish($h, timeout => 8);
    ok($r && $r->{successful}, '... and succeeds once the slot is given');
    is_deeply(missing_deliveries([ $sub ], '/feed', 'acl'), [],
              'the subscriber gets it');
    my $alog = substr($acl_server->error_log_text, $aoffset);
    my @tries = $alog =~ /requests follow ASK there/g;
    my @said = $alog =~ /refused ASKING/g;
    is_deeply([ scalar @tries, scalar @said ], [ 1, 1 ],
              'ASK followed once, the refusal said once');
    $acl_server->stop;
    $acl_server->check_crashes;
}

$server->stop;
$server->check_crashes;
done_testing;
