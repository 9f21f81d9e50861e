# Sessions expire in Redis by key TTL, interval + max_interval after their
# last connect, and leave no key behind ("redis-cli --scan"); a parked
# connect keeps its session alive however long it is held; entries of
# expired sessions in the subscriber sets of live channels go away as
# publishes and subscribes check them.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use JSON::PP ();
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

my $redis = start_redis();

my $server = Test::Nginx::Bayeux::Server->new(
    http_config => $redis->engine_conf(prefix => '"exp:"'),
    config => <<'CONF',
    location /cometd {
        bayeux;
        bayeux_timeout 3s;
        bayeux_interval 0;
        bayeux_max_interval 1s;
    }
CONF
)->start;

sub keys_of {
    my ($id) = @_;
    return grep { /\Q$id\E/ } $redis->cli_scan('exp:*');
}

# 1: subscribes, connects once, then is gone
my $gone = $server->client;
ok($gone->handshake->{successful}, 'gone: handshake');
ok($gone->subscribe('/a')->{successful}, 'gone: subscribe /a');
ok($gone->subscribe('/b/*')->{successful}, 'gone: subscribe /b/*');
ok($gone->subscribe('/c/**')->{successful}, 'gone: subscribe /c/**');
ok($gone->connect->{reply}{successful}, 'gone: first connect');

# 2: holds a connect three times as long as the session lifetime
my $held = $server->client;
ok($held->handshake->{successful}, 'held: handshake');
ok($held->subscribe('/a')->{successful}, 'held: subscribe /a');
ok($held->connect->{reply}{successful}, 'held: first connect');

# 3: expires while /a lives on (held keeps it alive)
my $stale = $server->client;
ok($stale->handshake->{successful}, 'stale: handshake');
ok($stale->subscribe('/a')->{successful}, 'stale: subscribe /a');

my $pub = $server->client;
ok($pub->handshake->{successful}, 'publisher: handshake');
ok($pub->publish('/a', 'queued')->{successful}, 'a message for gone');

my $r;
# (held by its worker since its first connect, it has no queue until
# the worker lets it go, its client not coming back)
my $gid = $gone->client_id;
my @k = sort map { /^exp:(\w):/ ? $1 : () } keys_of($gid);
ok(grep({ $_ eq 's' } @k) && grep({ $_ eq 'S' } @k),
   'gone has its session and subscription keys')
    or diag explain \@k;
ok(!grep({ $redis->cmd('PTTL', $_) < 0 } $redis->scan('exp:*')),
   'every key has a TTL');

$r = $held->connect(advice => { timeout => 0 });
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['queued'],
          'held: the message, too');

my $t0 = time;
my $h = $held->connect_start;
$r = $held->connect_finish($h, timeout => 6);
ok(!$r->{timed_out} && $r->{reply}{successful},
   'held: the parked connect is answered at its timeout');
cmp_ok(time - $t0, '>', 2.5, 'held: ... after 3 s, three lifetimes');
$r = $held->connect(advice => { timeout => 0 });
ok($r->{reply}{successful}, 'held: the session survived its hold');

$r = $gone->connect(advice => { timeout => 0 });
is($r->{reply}{error}, '402::session_unknown', 'gone: expired');
is_deeply([ keys_of($gone->client_id) ], [], 'gone: no key left');
is_deeply([ $redis->cli_scan('exp:c:/b/*') ], [],
          'gone: the channel it alone was subscribed to is gone');
is_deeply([ $redis->cli_scan('exp:c:/c/**') ], [], '... and /c/**');

# /a lives (held), and still lists stale, held by none since its
# handshake (it never connected), and gone, held by none since its client
# went away, until a check finds them gone: a subscribe checks two
# members of the held set at random, a publish one
sub held_on_a {
    [ grep { $_ ne $held->client_id }
      sort @{ $redis->cmd('SMEMBERS', 'exp:H:/a') } ]
}
is_deeply(held_on_a(), [ sort $stale->client_id, $gone->client_id ],
          'stale and gone: still in the held subscribers of /a')
    or diag explain $redis->cmd('SMEMBERS', 'exp:c:/a');
# (the publisher expired too: a new one)
$pub = $server->client;
$pub->handshake;
ok($pub->subscribe('/a')->{successful}, 'a new subscriber to /a');
my $checks = 0;
until (@{ held_on_a() } == 1 || $checks == 40) {
    ok($pub->publish('/a', 'next')->{successful}, 'a publish to /a');
    $checks++;
}
is_deeply(held_on_a(), [ $pub->client_id ],
          'stale and gone: removed from the held subscribers of /a by the '
          . 'checks of a subscribe and publishes');

# the last live sessions end: nothing at all is left
ok($held->disconnect->{successful}, 'held: disconnect');
ok($pub->disconnect->{successful}, 'publisher: disconnect');

# the ack extension keeps what it gave until acknowledged, in the queue or
# as a range of the logs ("ha", given from there the first time): a client
# that never acknowledges is given it again by every connect, and the
# queue lives on with the session, lifetime after lifetime
my $acker = $server->client;
ok($acker->handshake(ext => { ack => JSON::PP::true })->{successful},
   'acker: handshake with the ack extension');
ok($acker->subscribe('/k')->{successful}, 'acker: subscribe /k');
ok($acker->connect->{reply}{successful}, 'acker: first connect');
my $pub2 = $server->client;
ok($pub2->handshake->{successful}, 'publisher 2: handshake');
ok($pub2->publish('/k', 'kept')->{successful}, 'a message for acker');
ok($pub2->disconnect->{successful}, 'publisher 2: disconnect');
my ($given, $ttl_ok) = (0, 1);
my $t1 = time;
while (time < $t1 + 5) {
    my $c = $acker->connect(ext => { ack => 0 }, timeout => 2);
    last unless $c->{reply} && $c->{reply}{successful};
    $given++ if grep { $_->{data} eq 'kept' } @{ $c->{deliveries} };
    my $q = 'exp:q:' . $acker->client_id;
    $ttl_ok = 0 unless $redis->cmd('PTTL', $q) > 1000
        || (!$redis->cmd('EXISTS', $q)
            && ($redis->session_field($acker->client_id, 'ha', 'exp:') // '')
               ne '');
    sleep 0.4;
}
cmp_ok(time - $t1, '>=', 5, 'acker: five lifetimes of connects');
cmp_ok($given, '>=', 10, "acker: every connect was given the message "
                         . "again ($given)");
ok($ttl_ok, 'acker: its queue has more than a lifetime left after each '
   . '(or the batch is in the logs)');
ok($acker->disconnect->{successful}, 'acker: disconnect');
sleep 1.5;
is_deeply([ $redis->cli_scan('exp:*') ], [],
          'redis-cli --scan: no key left once every session ended');

$server->stop;
unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing();
