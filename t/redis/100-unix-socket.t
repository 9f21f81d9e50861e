# bayeux_redis_url unix:/path?db=N: the engine on a Redis that listens on
# a unix socket only (no TCP port): handshake, subscribe, publish and a
# connect that carries the message; a database number and a password
# given as parameters; Redis restarted under it.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;

my $redis = start_redis(unixsocket => 1, password => 'se&cret',
                        args => ['--requirepass', 'se&cret']);

# the password is escaped as in a URL
(my $url = $redis->url(5)) =~ s/se&cret/se%26cret/;
like($url, qr{^unix:/.*/redis\.sock\?db=5&password=se%26cret$},
     'the URL names the socket');

my $server = Test::Nginx::Bayeux::Server->new(
    http_config => "bayeux_engine redis;\nbayeux_redis_url $url;\n",
    config => <<'CONF',
    location /cometd { bayeux; bayeux_timeout 5s; }
CONF
)->start;

ok($server->wait_for_log(qr/bayeux: redis unix:\S+redis\.sock of location "\/cometd" connected/,
                         timeout => 5),
   'connected through the socket (logged with its path)');

my $s = $server->client;
ok($s->handshake->{successful}, 'handshake');
ok($s->subscribe('/unix')->{successful}, 'subscribe');
$s->connect;
my $p = $server->client;
ok($p->handshake->{successful}, 'a publisher');

my $h = $s->connect_start;
ok($p->publish('/unix', 'through the socket')->{successful}, 'publish');
my $r = $s->connect_finish($h, timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ],
          ['through the socket'], 'the parked connect carries the message');

my @keys = grep { /^bayeux:/ } @{ $redis->cmd('SELECT', 5) && $redis->cmd('KEYS', 'bayeux:*') };
ok(scalar @keys, 'the keys are in database 5');
$redis->cmd('SELECT', 0);

# Redis goes away and comes back on the same socket
$redis->restart;
my $c = $server->client;
my $ok;
for (1 .. 50) {
    my $hs = $c->handshake;
    last if $ok = $hs && $hs->{successful};
    select(undef, undef, undef, 0.1);
}
ok($ok, 'a handshake succeeds again after Redis restarted');
ok($server->wait_for_log(qr/is available again/, timeout => 5),
   'the recovery is logged');

$server->stop;
my $log = $server->error_log_text;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/connect\(\) .*failed/, 'no connect() line of its own: the '
       . 'reason is in the outage line');
like($log, qr/is unavailable \(/, 'the outage is logged with its reason');
done_testing;
