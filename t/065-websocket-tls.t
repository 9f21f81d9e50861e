# The websocket transport over TLS (wss): nginx's "listen ... ssl" in front
# of the module; frames are read and written through nginx's TLS layer,
# including a reply larger than the socket buffer (a write TLS could not
# finish must be retried from the same bytes).

use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;

my $dir = tempdir(CLEANUP => 1);
system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
       'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
       '-subj', '/CN=localhost', '-keyout', "$dir/key.pem",
       '-out', "$dir/cert.pem") == 0
    or die "openssl could not make a certificate\n";

our $TLS_PORT = Test::Nginx::Bayeux::Server::free_port();

our $CONFIG = <<"CONF";
    listen 127.0.0.1:$TLS_PORT ssl sndbuf=4k;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;

    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_max_queue 5000;
    }
CONF

block_defaults(config => $CONFIG);

run_tests();

sub wss {
    return Bayeux::WebSocket->new(port => $main::TLS_PORT, tls => 1,
                                  rcvbuf => 4096, @_);
}

__DATA__

=== TEST 1: over TLS: handshake, and a delivery pushed to the held connect
--- bayeux
my $ws = main::wss();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
ok($cid, 'a clientId over TLS');
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/t' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, id => 'held' } ]);
my $pub = client(); $pub->handshake;
$pub->publish('/t', { over => 'tls' });
my $r = $ws->recv_json(timeout => 3);
is_deeply([ map { $_->{data} } grep { $_->{channel} eq '/t' } @{ $r || [] } ],
          [ { over => 'tls' } ], 'pushed while the connect is held');
my $c = $ws->recv_json(timeout => 4);
is($c && $c->[0]{id}, 'held', 'then the connect, when its hold is over');



=== TEST 2: over TLS: a reply larger than the socket buffer, sent while the client does not read
--- bayeux
my $ws = main::wss();
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
$ws->send_json([ { channel => '/meta/disconnect', clientId => $cid, id => 'bye' } ]);
my $bye = $ws->recv_json(timeout => 3);
is($bye && $bye->[0]{id}, 'bye', 'the websocket still works after');
--- no_error_log
[crit]
bad write retry



=== TEST 3: over TLS: deliveries pushed while earlier ones still wait for the socket
--- bayeux
my $ws = main::wss();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/big' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, id => 'held' } ]);
sleep 0.2;
my $pub = client(); $pub->handshake;
my $blob = 'b' x 500;
for my $k (0 .. 5) {
    # not reading: the first push fills the socket, the next ones queue
    my @batch = map { { channel => '/big', clientId => $pub->client_id,
                        data => { n => $k * 200 + $_, blob => $blob } } } 0 .. 199;
    my $res = $pub->post('/', \@batch);
    is($res->status, 200, "batch $k published");
}
my @d;
while (my $r = $ws->recv_json(timeout => 5)) {
    push @d, grep { $_->{channel} eq '/big' } @$r;
    last if @d >= 1200;
}
is(scalar @d, 1200, 'every message arrived');
is_deeply([ map { $_->{data}{n} } @d ], [ 0 .. 1199 ], 'in order');
--- no_error_log
[crit]
bad write retry



=== TEST 4: over TLS: a client that stops reading but keeps pinging: its messages overflow the session's queue, and send_timeout closes it
--- log_level: info
--- config eval
(my $c = $main::CONFIG) =~ s/bayeux_max_queue 5000;/bayeux_max_queue 50;\n        send_timeout 2s;/;
$c
--- bayeux
my $ws = main::wss();
$ws->handshake or die $ws->error;
$ws->send_json([ { channel => '/meta/handshake', version => '1.0' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid, subscription => '/big' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid, id => 'held' } ]);
sleep 0.2;
my $pub = client(); $pub->handshake;
my $blob = 'b' x 5000;
my $failed = 0;
for my $k (0 .. 49) {
    # fewer than bayeux_max_queue at a time: only a stalled push overflows
    my @batch = map { { channel => '/big', clientId => $pub->client_id,
                        data => { n => $k * 20 + $_, blob => $blob } } } 0 .. 19;
    $failed++ unless $pub->post('/', \@batch)->status == 200;
    $ws->send_frame(opcode => 9, payload => "ping $k");
}
is($failed, 0, '5 MB published without an error');
my $t0 = time;
my $closed;
while (time - $t0 < 8) {
    $ws->send_frame(opcode => 9, payload => 'still here');
    if ($server->error_log_text =~ /websocket client read nothing for 2000 ms/) {
        $closed = 1;
        last;
    }
    select(undef, undef, undef, 0.25);
}
ok($closed, 'closed after send_timeout although the client keeps pinging');
--- error_log eval
[qr/\[info\] .*websocket client read nothing for 2000 ms \(send_timeout\), closing/,
 qr/is full \(bayeux_max_queue 50, bayeux_max_queue_size \d+\), the session ends/]
--- no_error_log
[crit]
[alert]
bad write retry
