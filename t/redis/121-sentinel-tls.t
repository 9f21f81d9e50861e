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

use Test::More;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::Redis;
use Test::Bayeux::TLS;
use Time::HiRes qw(time sleep);

my $dir = tls_dir();
tls_ca($dir, $_) for qw(ca other-ca);
tls_cert($dir, 'node', 'ca', 'localhost', 'IP:127.0.0.1');

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

my $server = tls_server($url, "$dir/ca.crt");
tls_conversation($server, 3);

my @workers = $server->serving_pids;
tls_links_on($server, $primary, $primary_tls);

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

tls_refused($url, "$dir/other-ca.crt", 'a sentinel');

done_testing;
