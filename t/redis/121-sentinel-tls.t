# bayeux_redis_url rediss+sentinel://: a Sentinel deployment that speaks
# TLS (the primary and the sentinel with --tls-port; the sentinel reaches
# the primary over TLS with tls-replication yes, and names its TLS port).
# The engine asks the sentinel over TLS where the primary is, watches it
# for +switch-master over TLS, links to the primary over TLS with the
# certificate verified by the sentinel's host name, and serves the
# protocol; a certificate of another CA is refused: 503 and the verify
# error in the log.  t/redis/120-sentinel.t covers failovers.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use File::Temp qw(tempdir);
use Test::More;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Time::HiRes qw(time sleep);

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

# TLS on a port of its own; the plain port stays for the test's commands
sub tls_args {
    my ($port) = @_;
    return ('--tls-port', $port, '--tls-replication', 'yes',
            '--tls-cert-file', "$dir/node.crt",
            '--tls-key-file', "$dir/node.key",
            '--tls-ca-cert-file', "$dir/ca.crt",
            '--tls-auth-clients', 'no');
}

my $primary_tls = Test::Nginx::Bayeux::Server::unused_port();
my $primary = start_redis(args => [ tls_args($primary_tls) ]);
my $sentinel_tls = Test::Nginx::Bayeux::Server::unused_port();
my $sentinel = start_redis(
    sentinel => "sentinel monitor mymaster 127.0.0.1 $primary_tls 1\n",
    args => [ tls_args($sentinel_tls) ]);

my $deadline = time + 10;
my $named = '';
while (time < $deadline) {
    $named = join(':', @{ $sentinel->cmd('SENTINEL',
                          'get-master-addr-by-name', 'mymaster') // [] });
    last if $named eq "127.0.0.1:$primary_tls";
    sleep 0.2;
}
is($named, "127.0.0.1:$primary_tls",
   "the sentinel names the primary's TLS port");

my $url = "rediss+sentinel://localhost:$sentinel_tls/mymaster";

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
        sleep 0.2;
        ok(($p->publish('/tls', "m$n") // {})->{successful}, "publish m$n");
        my $r = $s->connect_finish($h, timeout => 5);
        is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ "m$n" ],
                  '... delivered through a parked connect');
    }
}

# (port, name) of the bayeux connections to a node
sub bayeux_connections {
    my ($node) = @_;
    return map { /\bladdr=[\d.]+:(\d+)\b.*\bname=(\S*)/ ? [ $1, $2 ] : () }
           grep { /\bname=bayeux:/ }
           split(/\n/, $node->cmd('CLIENT', 'LIST'));
}

my @workers = $server->serving_pids;
my @on_primary = bayeux_connections($primary);
is(scalar(@on_primary), 2 * @workers,
   'two connections of each worker on the primary');
is_deeply([ grep { $_->[0] != $primary_tls } @on_primary ], [],
          "... on its TLS port ($primary_tls)");

# the watch (SUBSCRIBE +switch-master), on the sentinel's TLS port
$deadline = time + 5;
my @watching;
while (time < $deadline) {
    @watching = grep { /\bcmd=subscribe\b/ }
                split(/\n/, $sentinel->cmd('CLIENT', 'LIST'));
    last if @watching >= @workers;
    sleep 0.2;
}
is(scalar(@watching), scalar(@workers),
   'each worker watches the sentinel for +switch-master')
    or diag(join("\n", @watching));
is_deeply([ grep { !/\bladdr=[\d.]+:$sentinel_tls\b/ } @watching ], [],
          "... on its TLS port ($sentinel_tls)");

unlike($server->error_log_text, qr/\[(alert|crit|emerg)\]/,
       'no alert in the log');
$server->stop;
$server->check_crashes;

# a certificate of another CA
{
    my $wrong = server('other-ca');
    my $hs = $wrong->client->handshake;
    is($hs && $hs->{error}, '503::engine_unavailable',
       'a sentinel whose certificate is of another CA: '
       . '503::engine_unavailable');
    ok($wrong->wait_for_log(qr/\[error\] .*SSL certificate verify error/,
                            timeout => 5),
       '... and the log says the certificate did not verify');
    $wrong->stop;
    $wrong->check_crashes;
}

done_testing;
