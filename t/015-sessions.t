# What sessions cost: a handshake comes alone (as CometD requires), so that
# one request makes one session at most, and the memory of sessions that
# expired goes back.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
    }
CONF

run_tests();

# the worker's resident memory, in KB
sub rss {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/status") or die "/proc/$pid/status: $!";
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    die "no VmRSS for $pid";
}

# $n handshakes, one per request, pipelined: 500 per connection (nginx
# closes a connection after keepalive_requests)
sub handshakes {
    my ($port, $n) = @_;
    my $body = '[{"channel":"/meta/handshake","version":"1.0"}]';
    my $req = "POST /cometd/handshake HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    my $ok = 0;
    while ($n > 0) {
        my $k = $n > 500 ? 500 : $n;
        $n -= $k;
        my $sock = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                       PeerPort => $port)
            or die "connect: $!";
        binmode $sock;
        print $sock $req x $k;
        my ($buf, $seen) = ('', 0);
        while ($seen < $k) {
            sysread($sock, $buf, 65536, length $buf) or last;
            $seen = () = $buf =~ /"clientId"/g;
        }
        close $sock;
        $ok += $seen;
    }
    return $ok;
}

__DATA__

=== TEST 1: every change of a session is logged at debug, on either engine (the Redis rerun runs this too)
--- bayeux
my $c = client();
ok $c->handshake->{successful}, 'handshake';
ok $c->subscribe('/a')->{successful}, 'subscribe';
ok $c->publish('/a', { n => 1 })->{successful}, 'publish';
ok $c->unsubscribe('/a')->{successful}, 'unsubscribe';
ok $c->disconnect->{successful}, 'disconnect';
my $id = $c->client_id;
my $log = $server->error_log_text;
for my $ch ('/meta/subscribe', '/a', '/meta/unsubscribe', '/meta/disconnect') {
    like $log, qr/\[debug\].*bayeux: session \Q$id\E: \Q$ch\E applied, rc:0/,
         "$ch logged";
}
like $log, qr/\[debug\].*bayeux: session \Q$id\E: \/meta\/handshake applied, rc:0/,
     'the handshake logged with its new session';
unlike $log, qr/\[(?:info|notice|warn|error)\].*\Q$id\E/,
       'the session id above debug nowhere';


=== TEST 2: a handshake batched with other messages is refused with 400, and makes no session
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"},{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 400
--- response_body
handshake in a batch of several messages
--- error_log
bad request: handshake in a batch of several messages
--- no_error_log
qr/session [0-9a-f]+ created/
[error]



=== TEST 3: none of the batch's messages is applied
--- bayeux
my $a = client();
my $b = client();
$a->handshake;
$b->handshake;
$a->subscribe('/x');
$a->connect;
my ($status, $msgs, $body) = $b->post('/', [
    { channel => '/x', clientId => $b->client_id, data => 'not applied' },
    { channel => '/meta/handshake', version => '1.0' },
]);
is($status, 400, 'refused with 400');
is($body, "handshake in a batch of several messages\n", 'the reason');
my $r = $a->connect(advice => { timeout => 0 });
is(scalar @{ $r->{deliveries} }, 0, 'the publish was not applied');
ok($b->handshake->{successful}, 'a handshake alone is served');



=== TEST 4: callback-polling: refused alike
--- request
GET /cometd/handshake?jsonp=cb&message=%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%7D%2C%7B%22channel%22%3A%22%2Fmeta%2Fconnect%22%7D%5D
--- error_code: 400
--- response_body
handshake in a batch of several messages



=== TEST 5: websocket: the connection is closed with 1007 and the reason
--- bayeux
my $ws = Bayeux::WebSocket->new(port => $port);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' },
                 { channel => '/meta/handshake', version => '1.0' } ]);
my $f = $ws->recv_frame(timeout => 5);
is($f && $f->{opcode}, 8, 'close frame');
is($f && $f->{code}, 1007, 'invalid data');
is($f && $f->{reason}, 'handshake in a batch of several messages', 'reason');
--- no_error_log
qr/session [0-9a-f]+ created/



=== TEST 6: memory engine: the memory of sessions that expired goes back
--- skip_valgrind: measures the worker's resident memory
--- skip_sanitizer: measures the worker's memory
--- timeout: 120
--- config
    location /cometd {
        bayeux;
        bayeux_engine memory;
        bayeux_max_interval 1s;
    }
--- log_level: info
--- bayeux
my ($pid) = $server->worker_pids;
main::handshakes($port, 200);
sleep 1.5;
my $base = main::rss($pid);
my $n = main::handshakes($port, 40000);
is($n, 40000, '40000 sessions');
my $peak = main::rss($pid);
cmp_ok($peak - $base, '>', 8000, 'they take memory') or diag("$base $peak");
my $left;
my $deadline = time + 10;
do {
    sleep 0.5;
    $left = main::rss($pid);
} while ($left - $base > ($peak - $base) / 4 && time < $deadline);
cmp_ok($left - $base, '<=', ($peak - $base) / 4,
       'most of it goes back once they expired')
    or diag("base $base KB, peak $peak KB, after $left KB");
note("base $base KB, peak $peak KB, after $left KB");
ok(client()->handshake->{successful}, 'a new session is served');
