# bayeux_status: the counters of every bayeux endpoint after a known
# sequence of operations, as JSON (its shape exact) and in Prometheus'
# text format (checked by promtool when it is installed); summed over
# two workers on Redis; the websocket gauge and its closing log line;
# $bayeux_messages and $bayeux_error in log_format.
# t/redis/010-protocol.t runs this file again on the Redis engine.

use strict;
use warnings;

use lib 't/lib', 't/redis/lib';

use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Bayeux::WebSocket;
use JSON::PP;
use File::Temp qw(tempfile);
use Time::HiRes qw(sleep);

# the module's version, as src/ngx_bayeux.h defines it (t/113-version.t)
my ($VERSION) = do {
    my $h = "$Test::Nginx::Bayeux::Server::REPO/src/ngx_bayeux.h";
    open my $fh, '<', $h or die "$h: $!\n";
    local $/;
    <$fh> =~ /^#define\s+NGX_BAYEUX_VERSION\s+"([^"]+)"/m;
};

my $CONFIG = <<'CONF';
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        access_log logs/access.log bayeux;
    }
    location = /status { bayeux_status; }
CONF

my $HTTP = <<'CONF';
    log_format bayeux '$request_method $status $bayeux_messages '
                      '$bayeux_error';
CONF

sub status {
    my ($c, %o) = @_;
    my $r = $c->request(method => 'GET', uri => $o{uri} // '/status',
                        headers => $o{headers} // [], new_connection => 1);
    return $r;
}

sub promtool_ok {
    my ($text, $name) = @_;
    SKIP: {
        skip 'promtool not installed (apt-get install prometheus)', 1
            unless -x '/usr/bin/promtool';
        my ($fh, $file) = tempfile(UNLINK => 1);
        print $fh $text;
        close $fh;
        my $out = `promtool check metrics < $file 2>&1`;
        is($? >> 8, 0, "$name: promtool check metrics") or diag $out;
    }
}

# the counters of endpoint $name in a decoded JSON status
sub endpoint_of {
    my ($j, $name) = @_;
    my ($ep) = grep { $_->{endpoint} eq $name } @{ $j->{endpoints} };
    return $ep;
}

# the Redis part has times: checked for its shape and consistency, then
# taken out; $links per worker, each of which has a link per shard when
# t/redis/132-shards-protocol.t runs this file
my $shards = $ENV{TEST_BAYEUX_REDIS_SHARDS} || 1;

sub redis_part_ok {
    my ($ep, $links) = @_;
    $links *= $shards;
    my $r = delete $ep->{redis};
    return unless $ep->{engine} eq 'redis';
    ok($r, 'redis counters');
    is($r->{links_up}, $links, "links up: $links");
    is($r->{commands_in_flight}, 0, 'no command in flight');
    like("$r->{sessions_held} $r->{messages_queued}", qr/^\d+ \d+$/,
         'sessions held and messages queued counted (t/redis/145 checks '
         . 'their values)');
    my $l = $r->{command_latency_ms};
    is_deeply([sort keys %$l], [qw(buckets count sum)], 'latency shape');
    cmp_ok($l->{count}, '>', 0, 'commands timed');
    is($l->{buckets}{'+Inf'}, $l->{count}, 'every command in a bucket');
    is_deeply([sort { $a <=> $b } grep { $_ ne '+Inf' }
               keys %{ $l->{buckets} }],
              [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
              'latency buckets');
}

my $server = Test::Nginx::Bayeux::Server->new(config => $CONFIG,
                                              http_config => $HTTP);
$server->start;

# a known sequence: 3 handshakes, 2 subscribes, 1 publish delivered to 2
# sessions, one connect of an unknown session (402), one message that
# cannot be published (405), one disconnect, one HTTP 405

my ($a, $b, $c) = map { $server->client } 1 .. 3;

for ($a, $b, $c) {
    my $r = $_->handshake;
    ok($r->{successful}, 'handshake');
}
ok($a->subscribe('/chat')->{successful}, 'a subscribes');
ok($b->subscribe('/chat')->{successful}, 'b subscribes');
$a->connect;
$b->connect;
ok($c->publish('/chat', { text => 'hi' })->{successful}, 'c publishes');
is(scalar @{ $a->wait_deliveries(count => 1, timeout => 5) }, 1, 'a got it');
is(scalar @{ $b->wait_deliveries(count => 1, timeout => 5) }, 1, 'b got it');

{
    my $x = $server->client;
    my ($st, $msgs) = $x->post('/', [
        { channel => '/meta/connect', clientId => 'nosuchclient',
          connectionType => 'long-polling' },
        { channel => '/chat/**', clientId => $c->client_id,
          data => {} } ]);
    is($msgs->[0]{error}, '402::session_unknown', 'unknown session: 402');
    like($msgs->[1]{error}, qr/^405:/, 'a wildcard channel: 405');
}

ok($c->disconnect->{successful}, 'c disconnects');

{
    my $r = $c->request(method => 'PUT', suffix => '/', body => '[]',
                        new_connection => 1);
    is($r->status, 405, 'PUT: 405');
}

my $r = status($a);
is($r->status, 200, 'status: 200');
like($r->header('Content-Type'), qr{^application/json}, 'JSON by default');

my $j = decode_json($r->body);
is($j->{version}, $VERSION, 'version');
my $ep = endpoint_of($j, '/cometd');
redis_part_ok($ep, 1);

my $engine = $ep->{engine};
like($engine, qr/^(memory|redis)$/, 'engine named');

is_deeply($ep, {
    endpoint => '/cometd',
    engine => $engine,
    sessions => { created => 3,
                  ended => { disconnect => 1, expired => 0, inactive => 0 } },
    connects_held => 0,
    websockets_open => 0,
    subscribes => 2,
    unsubscribes => 0,
    messages => { published => 1, delivered => 2,
                  dropped => { queue_overflow => 0 } },
    queue_overflows => 0,
    errors => { 400 => 0, 401 => 0, 402 => 1, 403 => 0, 405 => 1,
                409 => 0, 500 => 0, 503 => 0, other => 0 },
    http_errors => { 400 => 0, 403 => 0, 404 => 0, 405 => 1, 408 => 0,
                     413 => 0, 415 => 0, 426 => 0, 499 => 0, other => 0 },
}, 'counters after the sequence, JSON shape exact') or diag $r->body;

is_deeply([sort keys %$j], [qw(endpoints version)], 'top level');

# a held connect is a gauge

{
    my $h = $a->connect_start;
    sleep 0.3;
    my $ep = endpoint_of(decode_json(status($b)->body), '/cometd');
    is($ep->{connects_held}, 1, 'one connect held');
    $a->connect_finish($h, timeout => 5);
    $ep = endpoint_of(decode_json(status($b)->body), '/cometd');
    is($ep->{connects_held}, 0, 'none held once answered');
}

# Prometheus

for my $how (['?format=prometheus', []],
             ['', [ Accept => 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1' ]])
{
    my $r = status($a, uri => "/status$how->[0]", headers => $how->[1]);
    my $name = $how->[0] || 'Accept: text/plain';
    is($r->status, 200, "$name: 200");
    is($r->header('Content-Type'), 'text/plain; version=0.0.4; charset=utf-8',
       "$name: the exposition format's type");
    my $t = $r->body;
    like($t, qr/^bayeux_info\{version="\Q$VERSION\E"\} 1$/m,
         "$name: version");
    like($t, qr/^bayeux_sessions_created_total\{endpoint="\/cometd"\} 3$/m,
         "$name: sessions created");
    like($t, qr/^bayeux_sessions_ended_total\{endpoint="\/cometd",reason="disconnect"\} 1$/m,
         "$name: sessions ended");
    like($t, qr/^bayeux_messages_delivered_total\{endpoint="\/cometd"\} 2$/m,
         "$name: delivered");
    like($t, qr/^bayeux_errors_total\{endpoint="\/cometd",code="402"\} 1$/m,
         "$name: errors by code");
    like($t, qr/^bayeux_http_errors_total\{endpoint="\/cometd",status="405",reason="method_not_allowed"\} 1$/m,
         "$name: HTTP errors by reason");
    if ($engine eq 'redis') {
        like($t, qr/^bayeux_redis_links_up\{endpoint="\/cometd"\} $shards$/m,
             "$name: Redis link");
        like($t, qr/^bayeux_redis_command_duration_seconds_bucket\{endpoint="\/cometd",le="0\.001"\} \d+$/m,
             "$name: latency histogram");
    } else {
        unlike($t, qr/bayeux_redis/, "$name: no Redis metrics");
    }
    promtool_ok($t, $name);
}

is(status($a, headers => [ Accept => 'application/json, text/plain' ])
   ->header('Content-Type'), 'application/json',
   'Accept preferring JSON: JSON');

# the websocket: a gauge, and a line when it closes

{
    my $off = $server->error_log_offset;
    my $ws = Bayeux::WebSocket->new(port => $server->port);
    ok($ws->handshake, 'websocket upgraded');
    $ws->send_json([{ channel => '/meta/handshake', version => '1.0',
                      supportedConnectionTypes => ['websocket'], id => 1 }]);
    my $m = $ws->recv_json;
    ok($m && $m->[0]{successful}, 'websocket handshake');
    my $ep = endpoint_of(decode_json(status($b)->body), '/cometd');
    is($ep->{websockets_open}, 1, 'one websocket open');
    $ws->close;
    my $line = $server->wait_for_log(
        qr/bayeux: websocket closed: \d+ ms, 1 messages in, 0 deliveries out, \d+ bytes sent, close 1006/,
        offset => $off, timeout => 5);
    ok($line, 'its closing line') or diag $server->error_log_text;
    unlike($server->error_log_text($off),
           qr/websocket closed.*\Q$m->[0]{clientId}\E/,
           'no session id in it');
    $ep = endpoint_of(decode_json(status($b)->body), '/cometd');
    is($ep->{websockets_open}, 0, 'none open once closed');
}

# a reload keeps the counters when the endpoints are as many; with one
# more, the new workers count anew (each endpoint a slot of its own)

SKIP: {
    skip 'no reload under valgrind (no master process)', 4 if use_valgrind();
    $server->reload(config => $CONFIG);
    my $ep = endpoint_of(decode_json(status($a)->body), '/cometd');
    is($ep->{sessions}{created}, 4, 'kept over a reload');
    $server->reload(config => $CONFIG . 'location /other { bayeux; }');
    my $j = decode_json(status($a)->body);
    is_deeply([map { $_->{endpoint} } @{ $j->{endpoints} }],
              ['/cometd', '/other'], 'one more endpoint');
    is(endpoint_of($j, '/cometd')->{sessions}{created}, 0,
       'counted anew');
    is(endpoint_of($j, '/other')->{sessions}{created}, 0,
       'the new one too');
}

$server->stop;

# $bayeux_messages and $bayeux_error in the access log

{
    open(my $fh, '<', $server->root . '/logs/access.log') or die $!;
    my @lines = map { chomp; $_ } <$fh>;
    ok((grep { $_ eq 'POST 200 2 402' } @lines), 'two messages, the first error 402')
        or diag explain \@lines;
    ok((grep { $_ eq 'POST 200 1 -' } @lines), 'one message, no error');
    ok((grep { $_ eq 'PUT 405 - -' } @lines), 'no batch: not found');
}

# two workers on Redis: the counters add up over both

SKIP: {
    skip 'several workers: not under valgrind', 1 if use_valgrind();
    skip 'once is enough: the Redis suite runs it already', 1
        if $ENV{TEST_BAYEUX_REDIS_PORT};

    require Test::Bayeux::Redis;
    require Test::Bayeux::FreshClient;
    my $redis = Test::Bayeux::Redis::start_redis();
    my $port = Test::Nginx::Bayeux::Server::free_port();
    my $s = Test::Nginx::Bayeux::Server->new(
        workers => 2,
        http_config => $redis->engine_conf . <<"CONF",
    server {
        listen 127.0.0.1:$port reuseport;
        location /cometd {
            bayeux;
            bayeux_timeout 2s;
            add_header X-Worker \$pid always;
        }
        location = /status { bayeux_status; }
    }
CONF
        config => 'location / { return 404; }',
    );
    $s->start;

    my @c = map { Test::Bayeux::FreshClient->new(port => $port) } 1 .. 10;
    my %workers;
    for my $c (@c) {
        ok($c->handshake->{successful}, 'handshake');
        ok($c->subscribe('/room')->{successful}, 'subscribe');
        $workers{(split m{/}, $_)[1]}++ for $c->served;
    }
    cmp_ok(scalar keys %workers, '>=', 2, 'both workers served');

    my $r = $c[0]->request(method => 'GET', uri => '/status',
                           new_connection => 1);
    my $ep = endpoint_of(decode_json($r->body), '/cometd');
    redis_part_ok($ep, 2);
    is($ep->{sessions}{created}, 10, '10 sessions created, summed');
    is($ep->{subscribes}, 10, '10 subscribes, summed');

    $r = $c[0]->request(method => 'GET', uri => '/status?format=prometheus',
                        new_connection => 1);
    promtool_ok($r->body, 'two workers');
    $s->stop;
}

done_testing();
