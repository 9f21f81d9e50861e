# The lifetime of a websocket's batches: a batch inside an engine call
# outlives whatever that call sets off.  A connect held on a websocket is
# answered from inside the engine call of a later message of the same
# websocket (a disconnect, a newer connect); when the client has reset
# the connection, that answer fails and closes the websocket, which must
# not free the batch whose call is still under way.
#
# The client writes a batch that keeps the worker busy and parks the
# connect, then the message that answers it, and resets the connection
# (SO_LINGER 0) at once: the reset is there before the answer is written.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;
use Time::HiRes qw(time);

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 5s;
        bayeux_websocket_max_message 1m;
    }
CONF

run_tests();

# a session on a new websocket, connected once (the next connect is held)
sub session {
    my $port = Test::Nginx::Bayeux::Conversation::server()->port;
    my $ws = Bayeux::WebSocket->new(port => $port);
    $ws->handshake or die 'upgrade: ' . $ws->error;
    $ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                       supportedConnectionTypes => ['websocket'] } ]);
    my $r = $ws->recv_json or die 'no handshake reply';
    my $cid = $r->[0]{clientId} or die 'handshake failed';
    $ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                       connectionType => 'websocket',
                       advice => { timeout => 0 } } ]);
    $ws->recv_json or die 'no connect reply';
    return ($ws, $cid);
}

# Many times: publishes and a held connect in one frame, then "$last"
# (the message that answers the held connect) in a second frame of the
# same write, then a reset.  The worker must stay the same and healthy.
sub race {
    my ($last) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my @workers = $server->worker_pids;
    my $limit = use_valgrind() ? 60 : 20;
    my $t0 = time;
    my $n = 0;

    while ($n < 200 && time - $t0 < $limit) {
        my ($ws, $cid) = session();
        my @busy = map { { channel => '/busy', clientId => $cid,
                           data => { n => $_, pad => 'x' x 40 } } } 1 .. 300;
        my $held = [ @busy, { channel => '/meta/connect', clientId => $cid,
                              connectionType => 'websocket', id => 'held' } ];
        my %m = (%$last, clientId => $cid);
        $ws->send_raw(Bayeux::WebSocket->frame(opcode => 1,
                          payload => JSON::PP->new->encode($held))
                      . Bayeux::WebSocket->frame(opcode => 1,
                          payload => JSON::PP->new->encode([ \%m ])));
        $ws->reset;
        $n++;
    }

    cmp_ok($n, '>=', use_valgrind() ? 5 : 50, "$n resets");
    ok(kill(0, $server->pid), 'nginx is up');
    is_deeply([ $server->worker_pids ], \@workers, 'the same worker');

    # a fresh client is served, over both transports
    my ($ws, $cid) = session();
    $ws->send_json([ { channel => '/meta/disconnect', clientId => $cid,
                       id => 'bye' } ]);
    my $r = $ws->recv_json(timeout => 5);
    ok($r && $r->[0]{successful}, 'a new websocket session is served');
    my $c = $server->client;
    ok($c->handshake->{successful}, 'a new long-polling session too');
}

__DATA__

=== TEST 1: a disconnect answers the connect held on the same websocket, whose client has reset the connection
--- timeout: 90
--- bayeux
main::race({ channel => '/meta/disconnect', id => 'bye' });
--- no_error_log
[alert]
exited on signal



=== TEST 2: a newer connect answers the connect held on the same websocket, whose client has reset the connection
--- timeout: 90
--- bayeux
main::race({ channel => '/meta/connect', connectionType => 'websocket',
             id => 'newer' });
--- no_error_log
[alert]
exited on signal
