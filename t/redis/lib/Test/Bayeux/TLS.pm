package Test::Bayeux::TLS;

# Certificates for the TLS tests, made by openssl in a directory of their
# own, and what those tests share:
#
#   my $dir = tls_dir();                  # skips the test without openssl
#                                         # or an nginx with TLS
#   tls_ca($dir, 'ca');                   # $dir/ca.crt, $dir/ca.key
#   tls_cert($dir, 'node', 'ca', 'localhost', 'IP:127.0.0.1');
#                                         # CN and DNS name, more SANs
#   my $s = tls_server($url, "$dir/ca.crt");    # verifying nginx, started
#   tls_conversation($s, 3);              # publishes through parked connects
#   tls_links_on($server, $node, $tls_port);
#                                         # the workers' links use TLS
#   tls_refused($url, "$dir/other-ca.crt", 'nodes');
#                                         # 503 and the verify error logged

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use Test::More;
use Test::Nginx::Bayeux::Server;
use Time::HiRes qw(sleep);

our @EXPORT = qw(tls_dir tls_ca tls_cert tls_server tls_conversation
                 tls_links_on tls_refused);

sub tls_dir {
    plan(skip_all => 'openssl not found')
        if system('openssl version >/dev/null 2>&1');
    plan(skip_all => 'nginx without TLS')
        unless `/usr/sbin/nginx -V 2>&1` =~ /--with-http_ssl_module/;
    return tempdir('bayeux-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
}

sub _openssl {
    my ($dir, @args) = @_;
    my $cmd = "openssl @args >>$dir/openssl.log 2>&1";
    system($cmd) == 0 or die "$cmd failed: " . `tail -5 $dir/openssl.log`;
}

sub tls_ca {
    my ($dir, $name) = @_;
    _openssl($dir, "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
             "-nodes -keyout $dir/$name.key -out $dir/$name.crt -days 2",
             "-subj '/CN=bayeux test $name'");
}

# $dir/$name.crt and .key, signed by CA $ca, for $cn (its CN and a DNS
# name) and the subject alternative names @more ("IP:127.0.0.1")
sub tls_cert {
    my ($dir, $name, $ca, $cn, @more) = @_;
    open(my $ext, '>', "$dir/$name.ext") or die "$dir/$name.ext: $!";
    print $ext 'subjectAltName=' . join(',', "DNS:$cn", @more) . "\n";
    close $ext;
    _openssl($dir, "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
             "-nodes -keyout $dir/$name.key -out $dir/$name.csr",
             "-subj '/CN=$cn'");
    _openssl($dir, "x509 -req -in $dir/$name.csr -CA $dir/$ca.crt",
             "-CAkey $dir/$ca.key -CAcreateserial -days 2",
             "-extfile $dir/$name.ext -out $dir/$name.crt");
}

# An nginx of 2 workers on the Redis at $url, verifying its certificate
# (and sending SNI) against the CA $ca_file; /cometd, bayeux_timeout 5s.
sub tls_server {
    my ($url, $ca_file) = @_;
    return Test::Nginx::Bayeux::Server->new(
        workers => 2,
        http_config => <<"CONF",
bayeux_engine redis;
bayeux_redis_url $url;
bayeux_redis_connect_timeout 1s;
bayeux_redis_ssl_verify on;
bayeux_redis_ssl_server_name on;
bayeux_redis_ssl_trusted_certificate $ca_file;
CONF
        config => "    location /cometd { bayeux; bayeux_timeout 5s; }\n",
    )->start;
}

# handshake, subscribe, and $n publishes, each carried by a parked connect
sub tls_conversation {
    my ($server, $n) = @_;
    my $s = $server->client;
    my $hs = $s->handshake;
    ok($hs && $hs->{successful}, 'handshake') or diag(explain($hs));
    ok(($s->subscribe('/tls') // {})->{successful}, 'subscribe');
    $s->connect(timeout => 5);
    my $p = $server->client;
    ok(($p->handshake // {})->{successful}, 'a publisher');
    for my $i (1 .. $n) {
        my $h = $s->connect_start;
        sleep 0.2;
        ok(($p->publish('/tls', "m$i") // {})->{successful}, "publish m$i");
        my $r = $s->connect_finish($h, timeout => 5);
        is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ "m$i" ],
                  '... delivered through a parked connect');
    }
}

# The workers of $server each have their two connections (commands and
# notifications) to Redis node $node, all on its TLS port $tls_port.
sub tls_links_on {
    my ($server, $node, $tls_port) = @_;
    my @bayeux = grep { /\bname=bayeux:/ }
                 split(/\n/, $node->cmd('CLIENT', 'LIST'));
    my @ports = map { /\bladdr=[\d.]+:(\d+)/ ? $1 : 0 } @bayeux;
    my @workers = $server->serving_pids;
    is(scalar(@ports), 2 * @workers,
       'two connections of each worker on the primary');
    is_deeply([ grep { $_ != $tls_port } @ports ], [],
              "... all on its TLS port ($tls_port)") or diag("@bayeux");
}

# An nginx trusting CA $ca_file, which did not sign the certificate of
# $what at $url: requests get 503::engine_unavailable and the log says why.
sub tls_refused {
    my ($url, $ca_file, $what) = @_;
    my $wrong = tls_server($url, $ca_file);
    my $hs = $wrong->client->handshake;
    is($hs && $hs->{error}, '503::engine_unavailable',
       "$what whose certificate is of another CA: 503::engine_unavailable");
    ok($wrong->wait_for_log(qr/\[error\] .*SSL certificate verify error/,
                            timeout => 5),
       '... and the log says the certificate did not verify');
    $wrong->stop;
    $wrong->check_crashes;
}

1;
