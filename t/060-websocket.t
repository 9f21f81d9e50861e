# The websocket transport: the handshake, Bayeux over frames, pushed
# deliveries, and broken frames (each with its close code, a healthy
# worker after).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_websocket_max_message 4k;
    }
CONF

run_tests();

sub ws {
    my $ws = Bayeux::WebSocket->new(port => Test::Nginx::Bayeux::Conversation::server()->port, @_);
    return $ws;
}

__DATA__

=== TEST 1: handshake, then Bayeux over frames; deliveries are pushed while the connect stays held
--- bayeux
my $ws = main::ws();
ok($ws->handshake, 'upgraded') or diag($ws->error);
is($ws->status, 101, '101 Switching Protocols');
is(lc $ws->response_headers->{upgrade}, 'websocket', 'Upgrade header');
ok(!exists $ws->response_headers->{'sec-websocket-extensions'},
   'no extension negotiated (permessage-deflate is declined)');

$ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                   supportedConnectionTypes => ['websocket'], id => '1' } ]);
my $r = $ws->recv_json;
ok($r->[0]{successful}, 'handshake over websocket');
my $cid = $r->[0]{clientId};
like($cid, qr/^[0-9a-f]{40}$/, 'clientId');

$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid,
                   subscription => '/ws/**', id => '2' } ]);
$r = $ws->recv_json;
is_deeply($r, [ { id => '2', channel => '/meta/subscribe',
                  successful => JSON::PP::true, clientId => $cid,
                  subscription => '/ws/**' } ], 'subscribed');

$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '3',
                   advice => { timeout => 0 } } ]);
$r = $ws->recv_json;
ok($r->[0]{successful}, 'first connect answered at once');

my $t0 = time;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '4' } ]);
sleep 0.3;
my $pub = client();
$pub->handshake;
$pub->publish('/ws/a', 'one', id => 'p1');
$pub->publish('/ws/b', 'two');
my @got;
while (@got < 2) {
    my $m = $ws->recv_json(timeout => 3) or last;
    push @got, @$m;
}
is_deeply([ map { $_->{data} } @got ], ['one', 'two'], 'pushed, in order');
ok(!grep({ $_->{channel} eq '/meta/connect' } @got),
   'the connect is still held');
cmp_ok(time - $t0, '<', 1.5, 'pushed before the hold time');

$r = $ws->recv_json(timeout => 4);
is($r->[0]{channel}, '/meta/connect', 'the connect reply comes at the end');
is($r->[0]{id}, '4', 'of the held connect');
cmp_ok(time - $t0, '>=', 1.9, 'after the hold time');
cmp_ok(time - $t0, '<', 2.6, 'not longer than advertised');

$ws->send_json([ { channel => '/meta/disconnect', clientId => $cid, id => '5' } ]);
$r = $ws->recv_json;
ok($r->[0]{successful}, 'disconnect');
--- no_error_log
[error]
[alert]



=== TEST 2: ping, pong, and a fragmented message with a ping in between
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_frame(opcode => 9, payload => 'hello');
my $f = $ws->recv_frame;
is($f->{opcode}, 10, 'pong');
is($f->{payload}, 'hello', 'same payload');
ok(!$f->{masked}, 'server frames are not masked');
$ws->send_frame(opcode => 10, payload => 'unsolicited');

my $msg = '[{"channel":"/meta/handshake","version":"1.0","id":"frag"}]';
$ws->send_frame(opcode => 1, fin => 0, payload => substr($msg, 0, 10));
$ws->send_frame(opcode => 9, payload => 'mid');
$ws->send_frame(opcode => 0, fin => 0, payload => substr($msg, 10, 20));
$ws->send_frame(opcode => 0, fin => 1, payload => substr($msg, 30));
$f = $ws->recv_frame;
is($f->{opcode}, 10, 'pong for the ping inside a fragmented message');
my $r = $ws->recv_json;
is($r->[0]{id}, 'frag', 'the fragmented message was applied');
ok($r->[0]{successful}, 'successfully');



=== TEST 3: a frame sent right after the handshake request
--- bayeux
my $ws = main::ws();
$ws->handshake(after => Bayeux::WebSocket->frame(opcode => 1,
    payload => '[{"channel":"/meta/handshake","version":"1.0","id":"early"}]'))
    or die $ws->error;
my $r = $ws->recv_json;
is($r->[0]{id}, 'early', 'applied');



=== TEST 4: broken frames get the close codes of RFC 6455
--- bayeux
my @cases = (
    [ 'unknown opcode',        { opcode => 3, payload => 'x' },            1002 ],
    [ 'unmasked client frame', { opcode => 1, payload => '[]', mask => 0 }, 1002 ],
    [ 'reserved bits',         { opcode => 1, payload => '[]', rsv => 4 },  1002 ],
    [ 'control frame too large', { opcode => 9, payload => 'p' x 126 },     1002 ],
    [ 'fragmented control frame', { opcode => 9, fin => 0, payload => 'p' }, 1002 ],
    [ 'continuation first',    { opcode => 0, payload => 'x' },            1002 ],
    [ 'binary message',        { opcode => 2, payload => "\x00\x01" },     1003 ],
    [ 'message over the limit', { opcode => 1, payload => 'x' x 5000 },    1009 ],
    [ 'not JSON',              { opcode => 1, payload => '[{' },           1007 ],
    [ 'invalid UTF-8',         { opcode => 1, payload => "[\"\xff\"]" },   1007 ],
    [ 'close with code 1005',  { opcode => 8, payload => pack('n', 1005) }, 1002 ],
    [ 'close with 1 byte',     { opcode => 8, payload => 'x' },            1002 ],
);
for my $c (@cases) {
    my ($what, $frame, $code) = @$c;
    my $ws = main::ws();
    $ws->handshake or die $ws->error;
    $ws->send_frame(%$frame);
    my $f = $ws->recv_frame(timeout => 3);
    is($f && $f->{opcode}, 8, "$what: close frame");
    is($f && $f->{code}, $code, "$what: code $code");
    ok(!$ws->recv_frame(timeout => 3) && $ws->eof, "$what: connection closed");
    ok(client()->handshake->{successful}, "$what: worker healthy");
}

my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_frame(opcode => 1, fin => 0, payload => 'x' x 3000);
$ws->send_frame(opcode => 0, fin => 1, payload => 'x' x 3000);
my $f = $ws->recv_frame(timeout => 3);
is($f && $f->{code}, 1009, 'fragments adding up over the limit: 1009');
--- error_log
bayeux: closing websocket: 1002 client frames must be masked
bayeux: closing websocket: 1009 message too big
bayeux: closing websocket: 1003 binary messages are not supported
--- no_error_log
[alert]
[crit]



=== TEST 5: the close handshake
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_frame(opcode => 8, payload => pack('n', 1000) . 'bye');
my $f = $ws->recv_frame;
is($f->{opcode}, 8, 'close answered');
is($f->{code}, 1000, 'with the same code');
ok(!$ws->recv_frame(timeout => 2) && $ws->eof, 'then closed');



=== TEST 6: a client that vanishes mid-frame, and one that vanishes with a held connect
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
my $frame = Bayeux::WebSocket->frame(opcode => 1, payload => '[' . ('{}' x 100) . ']');
$ws->send_raw(substr($frame, 0, 50));
$ws->close;

# a browser: its session may go on over long-polling
my $browser = '0123456789abcdef' x 2;
$ws = main::ws();
$ws->handshake(headers => [ Cookie => "BAYEUX_BROWSER=$browser" ])
    or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/v' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
sleep 0.3;
$ws->close;
ok($server->wait_for_log(qr/websocket client closed the connection/, timeout => 5),
   'the server noticed');

# the session lives on: its messages wait for its next connect
my $pub = client(); $pub->handshake;
$pub->publish('/v', 'kept');
my $c = client(cookie_jar => { BAYEUX_BROWSER => $browser });
$c->client_id($cid);
my $r = $c->connect(timeout => 3);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['kept'],
          'queued message delivered over long-polling');
ok(client()->handshake->{successful}, 'worker healthy');
--- no_error_log
[alert]
[crit]



=== TEST 7: handshake errors
--- bayeux
my $ws = main::ws();
ok(!$ws->handshake(version => 8), 'version 8 refused');
is($ws->status, 426, '426 Upgrade Required');
is($ws->response_headers->{'sec-websocket-version'}, '13', 'names version 13');

$ws = main::ws();
ok(!$ws->handshake(key => 'short'), 'bad key refused');
is($ws->status, 400, 'status 400');

my $res = client()->request(method => 'GET', suffix => '/',
                            headers => [ Upgrade => 'h2c', Connection => 'Upgrade' ]);
is($res->status, 400, 'other upgrades refused');



=== TEST 8: bayeux_transports without websocket
--- config
    location /cometd {
        bayeux;
        bayeux_transports long-polling callback-polling;
    }
--- bayeux
my $ws = main::ws();
ok(!$ws->handshake, 'not upgraded');
is($ws->status, 400, 'status 400');
my $c = client();
my $h = $c->handshake(supportedConnectionTypes => ['websocket', 'long-polling']);
is_deeply($h->{supportedConnectionTypes}, ['long-polling', 'callback-polling'],
          'supportedConnectionTypes follows bayeux_transports');
$h = client()->handshake(supportedConnectionTypes => ['websocket']);
is($h->{error}, '400::unsupported_connection_types', 'no common transport');
--- error_log
the websocket transport is not enabled



=== TEST 9: bayeux_transports websocket only: a long-polling connect is refused
--- config
    location /cometd {
        bayeux;
        bayeux_transports websocket;
    }
--- bayeux
my $c = client();
my $h = $c->handshake(supportedConnectionTypes => ['websocket']);
ok($h->{successful}, 'handshake over HTTP still works (Faye handshakes so)');
is_deeply($h->{supportedConnectionTypes}, ['websocket'], 'only websocket offered');
my $r = $c->connect;
is($r->{reply}{error}, '400::unsupported_connection_type', 'long-polling connect refused');



=== TEST 10: a required subprotocol
--- config
    location /cometd {
        bayeux;
        bayeux_websocket_protocol cometd;
    }
--- bayeux
my $ws = main::ws();
ok(!$ws->handshake, 'refused without the subprotocol');
is($ws->status, 400, 'status 400');
$ws = main::ws();
ok($ws->handshake(protocol => 'chat, cometd'), 'accepted when offered');
is($ws->response_headers->{'sec-websocket-protocol'}, 'cometd', 'selected');



=== TEST 11: idle timeout
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_websocket_idle_timeout 1500ms;
    }
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
my $t0 = time;
my $f = $ws->recv_frame(timeout => 5);
is($f && $f->{code}, 1001, 'closed with 1001 going away');
cmp_ok(time - $t0, '>=', 1.4, 'after the idle timeout');
--- error_log
websocket idle for 1500 ms



=== TEST 12: the idle timeout must exceed the connect hold
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 30s;
        bayeux_websocket_idle_timeout 10s;
    }
--- must_die
--- error_log
"bayeux_websocket_idle_timeout" (10000ms) must be longer than "bayeux_timeout" (30000ms)



=== TEST 13: an origin bayeux_allow_origin does not list cannot upgrade
--- config
    location /cometd {
        bayeux;
        bayeux_allow_origin https://app.example;
    }
--- bayeux
my $ws = main::ws();
ok(!$ws->handshake(headers => [ Origin => 'https://evil.example' ]), 'refused');
is($ws->status, 403, 'status 403');
$ws = main::ws();
ok($ws->handshake(headers => [ Origin => 'https://app.example' ]), 'listed origin accepted');



=== TEST 14: a reply larger than 64 KiB, and than the socket buffer
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_queue 5000;
    }
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/big' } ]);
$ws->recv_json;
my $pub = client(); $pub->handshake;
my $blob = 'b' x 500;
for my $k (0 .. 2) {
    my @batch = map { { channel => '/big', clientId => $pub->client_id,
                        data => { n => $k * 1000 + $_, blob => $blob } } } 0 .. 999;
    my $res = $pub->post('/', \@batch);
    is($res->status, 200, "batch $k published");
}
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
sleep 0.5;   # not reading: the server's socket buffer fills, it must wait
my $r = $ws->recv_json(timeout => 10);
my @d = grep { $_->{channel} eq '/big' } @{ $r || [] };
is(scalar @d, 3000, 'all 3000 messages in one frame of about 1.6 MB');
is_deeply([ map { $_->{data}{n} } @d ], [ 0 .. 2999 ], 'in order');



=== TEST 15: nginx -s quit closes websockets with 1001, their held connects freed
--- skip_valgrind: without a master process nginx exits at once on QUIT
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
sleep 0.3;
my $t0 = time;
$server->signal('QUIT');
my $f = $ws->recv_frame(timeout => 5);
is($f && $f->{opcode}, 8, 'close frame');
is($f && $f->{code}, 1001, 'going away');
cmp_ok(time - $t0, '<', 1.5, 'at once');
ok(!$ws->recv_frame(timeout => 3) && $ws->eof, 'then closed');
--- no_error_log
[alert]



=== TEST 16: a disconnect answers the connect held on the same websocket first
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, id => 'held' } ]);
sleep 0.2;
$ws->send_json([ { channel => '/meta/disconnect', clientId => $cid, id => 'bye' } ]);
my $first = $ws->recv_json(timeout => 3);
my $second = $ws->recv_json(timeout => 3);
is($first && $first->[0]{id}, 'held', 'the held connect is answered first');
is($first && $first->[0]{advice}{reconnect}, 'none', 'with reconnect none');
is($second && $second->[0]{id}, 'bye', 'then the disconnect');
ok($second && $second->[0]{successful}, 'successfully');



=== TEST 17: once upgraded, the websocket frees its HTTP request: nginx logs it (101) while the websocket goes on
--- access_log
--- bayeux
my $log = $server->root . '/logs/access.log';
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
open(my $fh, '<', $log) or die "$log: $!";
my @lines = <$fh>;
is(scalar @lines, 1, 'one request logged while the websocket is open');
like($lines[0], qr{"GET /cometd HTTP/1\.1" 101 }, 'the upgrade, answered 101');
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/a' },
                 { channel => '/a', clientId => $cid, data => 'still served', id => 'p' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
my $r = $ws->recv_json;
is(scalar(grep { ($_->{data} // '') eq 'still served' } @$r), 1, 'delivered over the websocket');



=== TEST 18: an upgrade request with a body is refused
--- bayeux
my $ws = main::ws();
ok(!$ws->handshake(headers => [ 'Content-Length' => 5 ], after => 'hello'),
   'refused');
is($ws->status, 400, 'status 400');
--- error_log
websocket upgrade request with a body



=== TEST 19: a connect and a disconnect in one write are applied in order: the connect is answered first, successfully
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_raw(
    Bayeux::WebSocket->frame(opcode => 1, payload => qq{[{"channel":"/meta/connect","clientId":"$cid","id":"c"}]})
  . Bayeux::WebSocket->frame(opcode => 1, payload => qq{[{"channel":"/meta/disconnect","clientId":"$cid","id":"d"}]}));
my $first = $ws->recv_json(timeout => 3);
my $second = $ws->recv_json(timeout => 3);
is($first && $first->[0]{id}, 'c', 'the connect first');
ok($first && $first->[0]{successful}, 'successful');
is($first && $first->[0]{advice}{reconnect}, 'none', 'reconnect none');
is($second && $second->[0]{id}, 'd', 'then the disconnect');
ok($second && $second->[0]{successful}, 'successful too');



=== TEST 20: a websocket that does not read: deliveries wait in the session's bounded queue, the worker does not grow, and pings do not keep it from send_timeout
--- skip_valgrind: measures the worker's memory and time
--- skip_sanitizer: measures the worker's memory
--- log_level: info
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_queue 100;
        client_max_body_size 2m;
        send_timeout 3s;
    }
--- bayeux
sub rss {
    open(my $fh, '<', "/proc/$_[0]/status") or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}
my ($worker) = $server->worker_pids;
my $ws = main::ws(rcvbuf => 4096);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/flood' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
# from here on the client reads nothing, but keeps pinging
my $pub = client(); $pub->handshake;
my $before = rss($worker);
my $blob = 'f' x 10000;
my ($failed, $max) = (0, 0);
for my $k (0 .. 39) {
    my @batch = map { { channel => '/flood', clientId => $pub->client_id,
                        data => { n => $k * 100 + $_, blob => $blob } } } 0 .. 99;
    my $res = $pub->post('/', \@batch);
    $failed++ unless $res->status == 200
                     && !grep { !$_->{successful} } @{ $res->{messages} || [{}] };
    $ws->send_frame(opcode => 9, payload => "ping $k");
    my $now = rss($worker) - $before;
    $max = $now if $now > $max;
}
is($failed, 0, 'the publisher saw no error');
note("the worker grew by at most $max kB");
cmp_ok($max, '<', 20000, 'about 40 MB published: the worker grew by less than 20 MB');
my $t0 = time;
my $closed;
while (time - $t0 < 10) {
    $ws->send_frame(opcode => 9, payload => 'still here');
    if ($server->error_log_text =~ /websocket client read nothing for 3000 ms/) {
        $closed = 1;
        last;
    }
    select(undef, undef, undef, 0.25);
}
ok($closed, 'closed after send_timeout although the client keeps pinging');
1 while $ws->recv_frame(timeout => 5);
ok($ws->eof, 'the connection is closed');
--- error_log eval
# (on the Redis engine a session whose output waits is held by no worker:
# what it misses stays in the channel's log, and its overflow is found
# when it comes back)
[qr/\[info\] .*websocket client read nothing for 3000 ms \(send_timeout\), closing/,
 $INC{'Test/Bayeux/RedisEngine.pm'} ? ()
 : qr/is full \(bayeux_max_queue 100, bayeux_max_queue_size \d+\), the session ends/]
--- no_error_log
[error]
[alert]



=== TEST 21: while a websocket's output waits, its deliveries overflow bayeux_max_queue: once it reads, it gets what was pushed before, in order, then its connect's 408::queue_overflow with handshake advice
--- log_level: info
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_interval 60s;
        bayeux_max_queue 50;
    }
--- bayeux
my $ws = main::ws(rcvbuf => 4096);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/q' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
my $pub = client(); $pub->handshake;
my $blob = 'q' x 10000;
my $failed = 0;
for my $n (0 .. 799) {
    $failed++ unless $pub->publish('/q', { n => $n, blob => $blob })->{successful};
}
is($failed, 0, '8 MB published without an error');
my (@n, $reply);
my $deadline = time + 30;
while (time < $deadline && !$reply) {
    my $r = $ws->recv_json(timeout => 5) or last;
    push @n, map { $_->{data}{n} } grep { $_->{channel} eq '/q' } @$r;
    ($reply) = grep { $_->{channel} eq '/meta/connect' } @$r;
}
cmp_ok(scalar @n, '<', 800, 'not all were delivered');
is_deeply(\@n, [ 0 .. $#n ], 'those delivered: the first ones, in order, none missing');
is($reply && $reply->{error}, '408::queue_overflow', 'then the connect is told');
is($reply && $reply->{advice}{reconnect}, 'handshake', 'to handshake again');
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
is($ws->recv_json->[0]{error}, '402::session_unknown', 'the session ended');
--- error_log eval
[qr/(is full \(bayeux_max_queue 50, bayeux_max_queue_size \d+\)|a held session missed messages that the log of its channel no longer had \(bayeux_max_queue 50\)), the session ends/]
--- no_error_log
[error]



=== TEST 22: replies waiting behind unsent output over bayeux_websocket_max_output close the websocket with 1008
--- log_level: info
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_interval 60s;
        bayeux_websocket_max_output 8k;
    }
--- bayeux
my $ws = main::ws(rcvbuf => 4096);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/q' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);
my $pub = client(); $pub->handshake;
my $blob = 'q' x 10000;
$pub->publish('/q', { n => $_, blob => $blob }) for 0 .. 799;
# the output waits now: 127-byte pongs pile up behind it
$ws->send_frame(opcode => 9, payload => 'x' x 125) for 1 .. 100;
ok($server->wait_for_log(qr/more than 8192 bytes of replies wait/, timeout => 5),
   'the limit is noticed');
my ($f, $pongs);
while ($f = $ws->recv_frame(timeout => 10)) {
    $pongs++ if $f->{opcode} == 10;
    last if $f->{opcode} == 8;
}
is($f && $f->{opcode}, 8, 'a close frame');
is($f && $f->{code}, 1008, 'policy violation');
cmp_ok($pongs, '<', 100, 'not every ping was answered');
ok(!$ws->recv_frame(timeout => 3) && $ws->eof, 'then closed');
--- error_log eval
[qr/\[info\] .*websocket client does not read, more than 8192 bytes of replies wait \(bayeux_websocket_max_output\), closing/,
 qr/closing websocket: 1008 output limit exceeded/]
--- no_error_log
[error]



=== TEST 23: a disconnect while the output waits answers the paused connect first
--- log_level: info
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_max_interval 60s;
        bayeux_max_queue 50;
    }
--- bayeux
my $ws = main::ws(rcvbuf => 4096);
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/q' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, id => 'held' } ]);
my $pub = client(); $pub->handshake;
my $blob = 'q' x 10000;
$pub->publish('/q', { n => $_, blob => $blob }) for 0 .. 599;
$ws->send_json([ { channel => '/meta/disconnect', clientId => $cid, id => 'bye' } ]);
my @replies;
while (my $r = $ws->recv_json(timeout => 5)) {
    push @replies, grep { $_->{channel} =~ m{^/meta/} } @$r;
    last if grep { ($_->{id} // '') eq 'bye' } @$r;
}
is_deeply([ map { $_->{id} } @replies ], [ 'held', 'bye' ],
          'the held connect is answered, then the disconnect');
is($replies[0] && $replies[0]{advice}{reconnect}, 'none', 'with reconnect none');
ok($replies[1] && $replies[1]{successful}, 'the disconnect succeeded');
--- no_error_log
[error]



=== TEST 24: a lone surrogate escape is refused (long-polling: 400; websocket: 1007), nothing of its batch applied; a websocket subscriber keeps its connection and gets the next message's code points in valid UTF-8
--- bayeux
my $utf8 = qr/\A(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]
               |[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]
               |\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}
               |\xf4[\x80-\x8f][\x80-\xbf]{2})*\z/x;
my $ws = main::ws();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/u' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid } ]);

my $pub = client();
$pub->handshake;
my $pcid = $pub->client_id;
my $body = '[{"channel":"/u","clientId":"' . $pcid . '","data":"first"},'
         . '{"channel":"/u","clientId":"' . $pcid . '","data":"\udc00"}]';
my $res = $pub->post('/', undef, raw_body => $body);
is($res->status, 400, 'long-polling: 400');
my $at = index($body, '\udc00') + 1;
is($res->body, "invalid unicode escape at byte $at: lone surrogate\n",
   'long-polling: the reason');

my $bad = main::ws();
$bad->handshake or die $bad->error;
$bad->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $bcid = $bad->recv_json->[0]{clientId};
my $text = '[{"channel":"/u","clientId":"' . $bcid . '","data":"second"},'
         . '{"channel":"/u","clientId":"' . $bcid . '","data":"\ud83d"}]';
$bad->send_text($text);
my $f = $bad->recv_frame(timeout => 3);
is($f && $f->{code}, 1007, 'websocket: closed with 1007');
is($f && $f->{reason},
   'invalid unicode escape at byte ' . (index($text, '\ud83d') + 1)
   . ': lone surrogate', 'websocket: the reason');

$res = $pub->post('/', undef, raw_body =>
    '[{"channel":"/u","clientId":"' . $pcid . '","data":"\ud83d\ude00"}]');
is($res->status, 200, 'a valid pair is published');

$f = $ws->recv_frame(timeout => 3);
is($f && $f->{opcode}, 1, 'the subscriber gets a text frame');
like($f && $f->{payload}, $utf8, 'in valid UTF-8');
my $m = $f && eval { JSON::PP->new->utf8->decode($f->{payload}) };
is_deeply([ map { $_->{data} } @{ $m || [] } ], [ "\x{1F600}" ],
          'only the valid message, with its code point');
$ws->send_json([ { channel => '/meta/publish', clientId => $cid } ]);
ok($ws->recv_frame(timeout => 3), 'the subscriber is still connected');
--- error_log
bayeux: bad websocket message: invalid unicode escape at byte
--- no_error_log
[error]
[alert]



=== TEST 25: a fragmented message whose first fragments are empty (no copy from or to nowhere: UBSan)
--- bayeux
my $ws = main::ws();
$ws->handshake or die $ws->error;
my $msg = '[{"channel":"/meta/handshake","version":"1.0","id":"empty-first"}]';
$ws->send_frame(opcode => 1, fin => 0, payload => '');
$ws->send_frame(opcode => 0, fin => 0, payload => '');
$ws->send_frame(opcode => 0, fin => 1, payload => $msg);
my $r = $ws->recv_json;
is($r && $r->[0]{id}, 'empty-first', 'the message is applied');
ok($r && $r->[0]{successful}, 'successfully');
$ws->send_frame(opcode => 1, fin => 0, payload => '');
$ws->send_frame(opcode => 0, fin => 1, payload => '');
my $f = $ws->recv_frame(timeout => 3);
is($f && $f->{code}, 1007, 'an empty message is refused with 1007 as before');
--- no_error_log
[alert]
