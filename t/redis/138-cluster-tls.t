# bayeux_redis_url rediss+cluster://: a Redis Cluster whose nodes speak
# TLS (redis-server --tls-port, --tls-cluster yes), certificates made here
# by openssl.  The engine asks the seeds over TLS which primary serves its
# slot (CLUSTER SLOTS names the TLS ports to a client on TLS), links to
# it over TLS with the certificate verified against its CA by the seeds'
# host name, and serves the protocol; a certificate of another CA is
# refused: 503::engine_unavailable and the verify error in the log.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Bayeux::RedisCluster;
use Test::Bayeux::TLS;

my $dir = tls_dir();
tls_ca($dir, $_) for qw(ca other-ca);
tls_cert($dir, 'node', 'ca', 'localhost', 'IP:127.0.0.1');

my $cluster = start_redis_cluster(
    primaries => 3, replicas => 0,
    tls => { cert => "$dir/node.crt", key => "$dir/node.key",
             ca => "$dir/ca.crt" });
my $url = $cluster->url;
like($url, qr{^rediss\+cluster://localhost:\d+(,localhost:\d+){2}$},
     'a rediss+cluster:// URL of the TLS ports');

my $server = tls_server($url, "$dir/ca.crt");
tls_conversation($server, 3);

# the workers' connections are on the TLS port of the slot's primary
{
    my $home = $cluster->slot_node($cluster->keyslot('{bayeux:}'));
    tls_links_on($server, $home, $cluster->tls_port($home));
}

like($server->error_log_text, qr/bayeux: redis 127\.0\.0\.1:\d+ \(cluster slot \d+\) of location "\/cometd" connected/,
     'the log names the primary');
unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the log');
$server->stop;
$server->check_crashes;

tls_refused($url, "$dir/other-ca.crt", 'nodes');

done_testing;
