# bayeux_websocket_log: a websocket's end is a line of the location's
# access log, as if a request had lasted its whole life: status 101, its
# duration, the bytes it sent, the messages it received, its session and
# user.  Off: the upgrade's line only, as before.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Bayeux::WebSocket;
use Time::HiRes qw(time sleep);

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

$APP->answer('/_app/handshake', status => 200,
             body => '{"user":"ann","subscribe":["/**"],"publish":["/**"]}');

block_defaults(http_config => <<'HTTP');
    log_format bayeux '$request|$status|$bytes_sent|$bayeux_transport|'
                      '$bayeux_messages|$bayeux_user|$bayeux_client_id|'
                      '$request_time';
HTTP

run_tests();

$APP->stop;

# a websocket's life: handshake, subscribe, publish twice, then close
sub life {
    my ($server, %o) = @_;
    my $ws = Bayeux::WebSocket->new(port => $server->port, path => '/cometd');
    $ws->handshake or die 'upgrade: ' . $ws->error;
    $ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                       supportedConnectionTypes => ['websocket'] } ]);
    my $r = $ws->recv_json(timeout => 5) or die 'no handshake reply';
    my $cid = $r->[0]{clientId};
    $ws->send_json([ { channel => '/meta/subscribe', clientId => $cid,
                       subscription => '/a' },
                     { channel => '/a', clientId => $cid, data => 1 } ]);
    $ws->recv_json(timeout => 5);
    $ws->send_json([ { channel => '/a', clientId => $cid, data => 2 } ]);
    $ws->recv_json(timeout => 5);
    sleep($o{linger} // 0);
    $ws->close;
    return $cid;
}

sub log_lines {
    my ($server) = @_;
    my $deadline = time + 5;
    my @l;
    while (time < $deadline) {
        open my $fh, '<', $server->root . '/logs/bayeux.log' or die $!;
        @l = map { chomp; $_ } <$fh>;
        last if @l >= 2;
        sleep 0.1;
    }
    return @l;
}

__DATA__

=== TEST 1: on: the upgrade's line, then the closing line with what the websocket did
--- config
    location /cometd {
        bayeux;
        bayeux_websocket_log on;
        bayeux_handshake_request /_app/handshake;
        access_log logs/bayeux.log bayeux;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
        access_log off;
    }
--- bayeux
my $cid = main::life($server, linger => 0.3);
my @l = main::log_lines($server);
is scalar @l, 2, 'two lines';
like $l[0], qr{^GET /cometd HTTP/1\.1\|101\|\d+\|-\|-\|-\|-\|},
     'the upgrade: no session yet';
my @f = split /\|/, $l[1];
is_deeply [ @f[0, 1, 3, 4, 5, 6] ],
          [ 'GET /cometd HTTP/1.1', 101, 'websocket', 4, 'ann', $cid ],
          'the close: status, transport, 4 messages received, user, session';
cmp_ok $f[2], '>', 300, 'the bytes it sent over its life';
cmp_ok $f[7], '>=', 0.3, 'its whole life as the request time';
--- no_error_log
[error]

=== TEST 2: off (the default): the upgrade's line only
--- config
    location /cometd {
        bayeux;
        access_log logs/bayeux.log bayeux;
    }
--- bayeux
main::life($server);
sleep 0.5;
open my $fh, '<', $server->root . '/logs/bayeux.log' or die $!;
my @l = <$fh>;
is scalar @l, 1, 'one line';
--- no_error_log
[error]
