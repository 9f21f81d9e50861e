# bayeux_redis_url rediss://: the engine on a Redis that speaks TLS only
# (redis-server --tls-port, --port 0), through nginx's own TLS, with
# certificates made here by openssl: the server's certificate verified
# against its CA with SNI; a Redis that asks for client certificates
# served with bayeux_redis_ssl_certificate; a certificate of another CA
# refused with a clear log line and 503::engine_unavailable, until a
# reload trusts the right CA.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::TLS;

my $dir = tls_dir();
tls_ca($dir, $_) for qw(ca other-ca);
tls_cert($dir, 'server', 'ca', 'localhost');
tls_cert($dir, 'client', 'ca', 'bayeux-client');

sub tls_redis {
    my ($auth_clients) = @_;
    return start_redis(tls => {
        cert => "$dir/server.crt", key => "$dir/server.key",
        ca => "$dir/ca.crt", auth_clients => $auth_clients,
        client_cert => "$dir/client.crt", client_key => "$dir/client.key",
    });
}

sub server {
    my ($redis, $ssl) = @_;
    return Test::Nginx::Bayeux::Server->new(
        http_config => "bayeux_engine redis;\n"
                       . "bayeux_redis_url " . $redis->url . ";\n$ssl",
        config => "    location /cometd { bayeux; bayeux_timeout 5s; }\n",
    )->start;
}

# handshake, subscribe, publish, and a parked connect carrying it
sub conversation {
    my ($server, $what) = @_;
    my $s = $server->client;
    my $hs = $s->handshake;
    ok($hs && $hs->{successful}, "$what: handshake")
        or return diag(explain($hs));
    ok($s->subscribe('/tls')->{successful}, "$what: subscribe");
    $s->connect;
    my $p = $server->client;
    $p->handshake;
    my $h = $s->connect_start;
    ok($p->publish('/tls', $what)->{successful}, "$what: publish");
    my $r = $s->connect_finish($h, timeout => 5);
    is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [$what],
              "$what: delivered through a parked connect");
}

sub clean_log {
    my ($server, $what) = @_;
    unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/,
           "$what: no alert");
}

# 1. server certificate verified, SNI; Redis does not ask for a client's
{
    my $redis = tls_redis('no');
    like($redis->url, qr{^rediss://localhost:\d+/0$}, 'a rediss:// URL');
    my $server = server($redis, <<"SSL");
bayeux_redis_ssl_verify on;
bayeux_redis_ssl_trusted_certificate $dir/ca.crt;
bayeux_redis_ssl_server_name on;
SSL
    ok($server->wait_for_log(qr/bayeux: redis localhost:\d+ of location "\/cometd" connected/,
                             timeout => 5), 'verified: connected');
    conversation($server, 'verified');
    $server->stop;
    clean_log($server, 'verified');
}

# 2. Redis asks for client certificates: served with one, refused without
{
    my $redis = tls_redis('yes');
    my $server = server($redis, <<"SSL");
bayeux_redis_ssl_verify on;
bayeux_redis_ssl_trusted_certificate $dir/ca.crt;
bayeux_redis_ssl_certificate $dir/client.crt;
bayeux_redis_ssl_certificate_key $dir/client.key;
SSL
    conversation($server, 'client certificate');
    $server->stop;
    clean_log($server, 'client certificate');

    $server = server($redis, "bayeux_redis_ssl_verify off;\n");
    my $hs = $server->client->handshake;
    is($hs && $hs->{error}, '503::engine_unavailable',
       'no client certificate: 503::engine_unavailable');
    ok($server->wait_for_log(qr/\[error\] .*bayeux: redis localhost:\d+ of location "\/cometd" is unavailable \(.+\)/,
                             timeout => 5),
       'no client certificate: the outage is logged with its reason');
    $server->stop;
    clean_log($server, 'no client certificate');
}

# 3. the certificate of another CA: fails closed, logs why, recovers when
#    the right CA is trusted
{
    my $redis = tls_redis('no');
    my $server = server($redis, <<"SSL");
bayeux_redis_ssl_verify on;
bayeux_redis_ssl_trusted_certificate $dir/other-ca.crt;
SSL
    my $hs = $server->client->handshake;
    ok($hs && !$hs->{successful}, 'wrong CA: the handshake fails');
    is($hs && $hs->{error}, '503::engine_unavailable',
       'wrong CA: 503::engine_unavailable');
    is($hs && $hs->{advice}{reconnect}, 'retry', 'wrong CA: retry advice');
    ok($server->wait_for_log(qr/\[error\] .*bayeux: redis localhost:\d+ of location "\/cometd" is unavailable \(SSL certificate verify error: \(\d+:[^)]+\)\)/,
                             timeout => 5),
       'wrong CA: the log says the certificate could not be verified')
        or diag($server->error_log_text);
    my $keys = $redis->cmd('DBSIZE');
    is($keys, 0, 'wrong CA: nothing was written to that Redis');

    if (use_valgrind()) {
        # (valgrind runs nginx without a master process: no reload)
        $server->stop;
        clean_log($server, 'wrong CA');
        done_testing;
        exit 0;
    }

    $server->reload(http_config => "bayeux_engine redis;\n"
        . "bayeux_redis_url " . $redis->url . ";\n"
        . "bayeux_redis_ssl_verify on;\n"
        . "bayeux_redis_ssl_trusted_certificate $dir/ca.crt;\n");
    ok($server->wait_for_log(qr/of location "\/cometd" connected/,
                             timeout => 5), 'fixed: connected');
    conversation($server, 'fixed');
    $server->stop;
    clean_log($server, 'wrong CA');
}

done_testing;
