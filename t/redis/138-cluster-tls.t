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

use File::Temp qw(tempdir);
use Test::More;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::RedisCluster;

plan(skip_all => 'openssl not found')
    if system('openssl version >/dev/null 2>&1');
plan(skip_all => 'nginx without TLS')
    unless `/usr/sbin/nginx -V 2>&1` =~ /--with-http_ssl_module/;

my $dir = tempdir('bayeux-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub openssl {
    my $cmd = "openssl @_ >>$dir/openssl.log 2>&1";
    system($cmd) == 0 or die "$cmd failed: " . `tail -5 $dir/openssl.log`;
}

for my $ca (qw(ca other-ca)) {
    openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
            "-nodes -keyout $dir/$ca.key -out $dir/$ca.crt -days 2",
            "-subj '/CN=bayeux test $ca'");
}
{
    open(my $ext, '>', "$dir/node.ext") or die;
    print $ext "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    close $ext;
    openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
            "-keyout $dir/node.key -out $dir/node.csr -subj '/CN=localhost'");
    openssl("x509 -req -in $dir/node.csr -CA $dir/ca.crt",
            "-CAkey $dir/ca.key -CAcreateserial -days 2",
            "-extfile $dir/node.ext -out $dir/node.crt");
}

my $cluster = start_redis_cluster(
    primaries => 3, replicas => 0,
    tls => { cert => "$dir/node.crt", key => "$dir/node.key",
             ca => "$dir/ca.crt" });
my $url = $cluster->url;
like($url, qr{^rediss\+cluster://localhost:\d+(,localhost:\d+){2}$},
     'a rediss+cluster:// URL of the TLS ports');

sub server {
    my ($ca) = @_;
    return Test::Nginx::Bayeux::Server->new(
        workers => 2,
        http_config => <<"CONF",
bayeux_engine redis;
bayeux_redis_url $url;
bayeux_redis_connect_timeout 1s;
bayeux_redis_ssl_verify on;
bayeux_redis_ssl_server_name on;
bayeux_redis_ssl_trusted_certificate $dir/$ca.crt;
CONF
        config => "    location /cometd { bayeux; bayeux_timeout 5s; }\n",
    )->start;
}

my $server = server('ca');

# handshake, subscribe, publish, and a parked connect carrying it
{
    my $s = $server->client;
    my $hs = $s->handshake;
    ok($hs && $hs->{successful}, 'handshake') or diag(explain($hs));
    ok(($s->subscribe('/tls') // {})->{successful}, 'subscribe');
    $s->connect(timeout => 5);
    my $p = $server->client;
    ok(($p->handshake // {})->{successful}, 'a publisher');
    for my $n (1 .. 3) {
        my $h = $s->connect_start;
        select(undef, undef, undef, 0.2);
        ok(($p->publish('/tls', "m$n") // {})->{successful}, "publish m$n");
        my $r = $s->connect_finish($h, timeout => 5);
        is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ "m$n" ],
                  "... delivered through a parked connect");
    }
}

# the workers' connections are on the TLS port of the slot's primary
{
    my $home = $cluster->slot_node($cluster->keyslot('{bayeux:}'));
    my $tls_port = $cluster->tls_port($home);
    my @bayeux = grep { /\bname=bayeux:/ }
                 split(/\n/, $home->cmd('CLIENT', 'LIST'));
    my @ports = map { /\bladdr=[\d.]+:(\d+)/ ? $1 : 0 } @bayeux;
    my @workers = $server->serving_pids;
    is(scalar(@ports), 2 * @workers,
       'two connections of each worker on the primary');
    is_deeply([ grep { $_ != $tls_port } @ports ], [],
              "... all on its TLS port ($tls_port)") or diag("@bayeux");
}

like($server->error_log_text, qr/bayeux: redis 127\.0\.0\.1:\d+ \(cluster slot \d+\) of location "\/cometd" connected/,
     'the log names the primary');
unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the log');
$server->stop;
$server->check_crashes;

# a certificate of another CA
{
    my $wrong = server('other-ca');
    my $hs = $wrong->client->handshake;
    is($hs && $hs->{error}, '503::engine_unavailable',
       'nodes whose certificate is of another CA: 503::engine_unavailable');
    ok($wrong->wait_for_log(qr/\[error\] .*SSL certificate verify error/,
                          timeout => 5),
       '... and the log says the certificate did not verify');
    $wrong->stop;
    $wrong->check_crashes;
}

done_testing;
