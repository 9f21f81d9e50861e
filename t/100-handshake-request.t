# bayeux_handshake_request: every /meta/handshake asks the application,
# through a subrequest, whether it may go on.  A real application server
# (t/lib/Test/Bayeux/App.pm) answers on a loopback port, as each block
# says, and records what it got.
#
# On each transport: accepted (the session works afterwards), denied (403
# and 401), what reaches the application (the handshake as JSON, ext, the
# client's headers), and the failures, which fail closed: the application
# down, too slow, answering bytes that are not HTTP.  A client that goes
# away while the subrequest runs.  Two handshakes at once, a slow one and
# a fast one.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Bayeux::WebSocket;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

# a port where nothing listens
{
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die $!;
    $ENV{TEST_NGINX_DOWN_PORT} = $s->sockport;
    close $s;
}

our $TYPES = '"supportedConnectionTypes":["websocket","long-polling",'
           . '"callback-polling"]';
our $DENIED = '{"id":"1","channel":"/meta/handshake","successful":false,'
            . '"error":"403::handshake_denied",' . $TYPES
            . ',"advice":{"reconnect":"none"}}';
our $UNAVAILABLE = '{"id":"1","channel":"/meta/handshake","successful":false,'
                 . '"error":"503::application_unavailable",' . $TYPES
                 . ',"advice":{"reconnect":"retry","interval":0,'
                 . '"timeout":2000,"maxInterval":10000}}';
# the session may then subscribe and publish on /chat (the endpoint is
# closed by default once the application decides)
our $GRANTS = '{"subscribe":["/chat"],"publish":["/chat"]}';
our $FAILED = qr/bayeux: handshake request "\/_app\/handshake" failed: /;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
        proxy_read_timeout 1s;
    }
CONF

run_tests();

$APP->stop;


# The handshake on a transport; returns (the raw reply text, the reply
# decoded, what carries the session: a Bayeux::Client or a websocket).
# Options: ext, headers (arrayref of pairs), id.
sub handshake {
    my ($transport, %o) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $m = { channel => '/meta/handshake', version => '1.0',
              minimumVersion => '1.0',
              supportedConnectionTypes => [ $transport ],
              id => $o{id} // '1' };
    $m->{ext} = $o{ext} if $o{ext};
    my @headers = @{ $o{headers} || [] };

    if ($transport eq 'websocket') {
        my $ws = Bayeux::WebSocket->new(port => $server->port);
        $ws->handshake(headers => \@headers) or die 'upgrade: ' . $ws->error;
        $ws->send_json([ $m ]);
        my $f = $ws->recv_frame(timeout => $o{timeout} // 10)
            or die 'no handshake reply on the websocket';
        my $text = $f->{payload};
        my $r = JSON::PP::decode_json($text);
        return ($text, $r->[0], $ws);
    }

    my $c = $server->client(connection_type => $transport,
                            headers => \@headers);
    my $res = $c->post('/handshake', [ $m ],
                       $transport eq 'callback-polling' ? (jsonp => 'cb') : (),
                       timeout => $o{timeout} // 10);
    my $text = $res->body;
    $text =~ s{^/\*\*/cb\((.*)\);?\s*$}{$1}s;
    my $r = JSON::PP::decode_json($text);
    $c->client_id($r->[0]{clientId}) if $r->[0]{successful};
    return ($text, $r->[0], $c);
}

# subscribe, publish, deliver on the session just made
sub works {
    my ($transport, $r, $carrier) = @_;
    my $cid = $r->{clientId};

    if ($transport eq 'websocket') {
        my $ws = $carrier;
        $ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                           connectionType => 'websocket',
                           advice => { timeout => 0 } } ]);
        $ws->recv_json(timeout => 5) or return 0;
        $ws->send_json([ { channel => '/meta/subscribe', clientId => $cid,
                           subscription => '/chat' },
                         { channel => '/chat', clientId => $cid,
                           data => { text => 'hi' } },
                         { channel => '/meta/connect', clientId => $cid,
                           connectionType => 'websocket' } ]);
        my $deadline = time + 5;
        while (time < $deadline) {
            my $msgs = $ws->recv_json(timeout => 5) or return 0;
            for my $m (@$msgs) {
                return 1 if ($m->{channel} // '') eq '/chat'
                            && ($m->{data}{text} // '') eq 'hi';
            }
        }
        return 0;
    }

    # a session is any transport's: the rest goes over long-polling
    my $c = $carrier;
    $c->{connection_type} = 'long-polling';
    $c->subscribe('/chat');
    $c->connect(advice => { timeout => 0 });
    $c->publish('/chat', { text => 'hi' });
    my $d = $c->wait_deliveries(count => 1, channel => '/chat', timeout => 5);
    my @d = ref $d eq 'ARRAY' ? @$d : ($d);
    return @d && ref $d[0] && $d[0]{data}{text} eq 'hi';
}

# a /meta/connect naming a session that was not made: 402
sub no_session {
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client;
    $c->client_id('0' x 40);
    my $r = $c->connect(advice => { timeout => 0 });
    return $r->{reply} && ($r->{reply}{error} // '') eq '402::session_unknown';
}

sub count_lines {
    my ($re) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my @l = grep { /$re/ } split /\n/, $server->error_log_text;
    return scalar @l;
}

__DATA__

=== TEST 1: accepted (2xx) on each transport: the session works afterwards
--- bayeux
for my $t ('long-polling', 'callback-polling', 'websocket') {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200,
                       body => $main::GRANTS);
    my ($text, $r, $carrier) = main::handshake($t);
    ok $r->{successful}, "$t: handshake successful";
    like $r->{clientId}, qr/^[0-9a-f]{40}$/, "$t: clientId";
    ok main::works($t, $r, $carrier), "$t: subscribe, publish, deliver";
    is scalar @{ $main::APP->requests }, 1, "$t: one request to the application";
}
--- no_error_log
[error]

=== TEST 2: what the application receives: POST, the handshake as JSON, ext, the client's headers (the upgrade's, on a websocket)
--- bayeux
for my $t ('long-polling', 'callback-polling', 'websocket') {
    $main::APP->clear;
    my ($text, $r) = main::handshake($t,
        ext => { auth => { user => 'ann', password => 's3cret' } },
        headers => [ Cookie => 'session=abc; other=1',
                     Authorization => 'Bearer t0ken',
                     'X-Custom' => "for $t" ]);
    ok $r->{successful}, "$t: accepted";
    my ($req) = @{ $main::APP->requests };
    is $req->{method}, 'POST', "$t: POST";
    is $req->{path}, '/_app/handshake', "$t: to the uri";
    is $req->{headers}{'content-type'}, 'application/json', "$t: JSON";
    is $req->{headers}{'content-length'}, length($req->{body}),
       "$t: Content-Length of the body";
    ok !exists $req->{headers}{'transfer-encoding'}, "$t: not chunked";
    like $req->{headers}{cookie}, qr/session=abc/, "$t: Cookie";
    is $req->{headers}{authorization}, 'Bearer t0ken', "$t: Authorization";
    is $req->{headers}{'x-custom'}, "for $t", "$t: any header";
    is_deeply $req->{json},
        { channel => '/meta/handshake', version => '1.0',
          minimumVersion => '1.0', supportedConnectionTypes => [ $t ],
          id => '1',
          ext => { auth => { user => 'ann', password => 's3cret' } } },
        "$t: the handshake message";
}
--- no_error_log
[error]

=== TEST 3: denied (403 and 401) on each transport: the exact reply, no session made
--- bayeux
for my $status (403, 401) {
    for my $t ('long-polling', 'callback-polling', 'websocket') {
        $main::APP->clear;
        $main::APP->answer('/_app/handshake', status => $status,
                           body => 'go away');
        my ($text, $r) = main::handshake($t);
        is $text, ($t eq 'websocket' ? "[$main::DENIED]" : "[$main::DENIED]"),
           "$t, $status: 403::handshake_denied";
        ok main::no_session(), "$t, $status: a connect gets 402";
    }
}
--- no_error_log
[error]

=== TEST 4: the application down: 503::application_unavailable with retry advice, one error line for the burst
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_DOWN_PORT;
    }
--- bayeux
for my $t (('long-polling', 'callback-polling', 'websocket') x 2) {
    my ($text, $r) = main::handshake($t);
    is $text, "[$main::UNAVAILABLE]", "$t: 503::application_unavailable";
}
ok main::no_session(), 'a connect gets 402';
# at most one line a second
my @seconds = map { /^(\S+ \S+)/ ? $1 : () }
              grep { /$main::FAILED/ } split /\n/, $server->error_log_text;
my %seen;
ok @seconds >= 1 && @seconds < 6 && !grep({ $seen{$_}++ } @seconds),
   'one error line a second: ' . scalar @seconds;
like $server->error_log_text, qr/$main::FAILED\Qstatus 502\E/, 'status 502';
--- error_log eval
qr/bayeux: handshake request "\/_app\/handshake" failed: status 502/

=== TEST 5: the application too slow (proxy_read_timeout 1s): the same
--- bayeux
for my $t ('long-polling', 'callback-polling', 'websocket') {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200, delay => 3);
    my $t0 = time;
    my ($text, $r) = main::handshake($t);
    is $text, "[$main::UNAVAILABLE]", "$t: 503::application_unavailable";
    cmp_ok time - $t0, '<', 2.9, "$t: after proxy_read_timeout";
}
like $server->error_log_text, qr/$main::FAILED\Qstatus 504\E/, 'status 504';
--- error_log eval
qr/upstream timed out/

=== TEST 6: the application answers bytes that are not HTTP: the same, never an open door
--- bayeux
for my $t ('long-polling', 'callback-polling', 'websocket') {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', garbage => "\x00\x01garbage\r\n");
    my ($text, $r) = main::handshake($t);
    is $text, "[$main::UNAVAILABLE]", "$t: 503::application_unavailable";
    ok main::no_session(), "$t: a connect gets 402";
    sleep 1.05;   # a line for each burst
}
is main::count_lines(qr/$main::FAILED\Qthe answer is not HTTP\E/), 3,
   'one line a burst';
--- error_log eval
qr/bayeux: handshake request "\/_app\/handshake" failed: the answer is not HTTP/

=== TEST 7: any other status (500, 404 of a location that is not there) fails closed
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_app/handshake;
    }
    location /nowhere {
        bayeux;
        bayeux_timeout 2s;
        bayeux_handshake_request /_missing;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::APP->clear;
$main::APP->answer('/_app/handshake', status => 500);
my ($text) = main::handshake('long-polling');
is $text, "[$main::UNAVAILABLE]", '500: unavailable';
sleep 1.05;
my $c = client(path => '/nowhere');
my $r = $c->handshake(id => '1');
is $r->{error}, '503::application_unavailable', '404: unavailable';
like $server->error_log_text, qr/$main::FAILED\Qstatus 500\E/, 'status 500';
like $server->error_log_text,
     qr/\Qbayeux: handshake request "\/_missing" failed: status 404\E/,
     'status 404';

=== TEST 8: the client goes away while the subrequest runs (long-polling, callback-polling, websocket): the worker survives, a later handshake works
--- bayeux
my @workers = $server->worker_pids;
for my $t ('long-polling', 'callback-polling', 'websocket') {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200, delay => 0.5);
    if ($t eq 'websocket') {
        my $ws = Bayeux::WebSocket->new(port => $port);
        $ws->handshake or die $ws->error;
        $ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                           supportedConnectionTypes => ['websocket'] } ]);
        sleep 0.2;
        $ws->reset;
    } else {
        my $c = client(connection_type => $t);
        my $h = $c->post_start('/handshake',
                    [ { channel => '/meta/handshake', version => '1.0',
                        supportedConnectionTypes => [ $t ] } ],
                    $t eq 'callback-polling' ? (jsonp => 'cb') : ());
        sleep 0.2;
        $c->close;
    }
    sleep 0.2;
    is scalar @{ $main::APP->requests }, 1, "$t: the application was asked";
    sleep 0.6;   # the application answers a closed request
    $main::APP->answer('/_app/handshake', status => 200,
                       body => $main::GRANTS);
    my ($text, $r, $carrier) = main::handshake($t);
    ok $r->{successful}, "$t: a later handshake works";
    ok main::works($t, $r, $carrier), "$t: and its session";
}
is_deeply [ $server->worker_pids ], \@workers, 'the same worker';
--- no_error_log
[alert]
[crit]
failed: status

=== TEST 9: two handshakes at once, a slow one and a fast one: both answered, each with its own answer
--- bayeux
$main::APP->clear;
$main::APP->answer('/_app/handshake', status => 200, body => $main::GRANTS);
$main::APP->answer('/_app/handshake', status => 403, delay => 0.8,
                   when => 'slow');
for my $t ('long-polling', 'websocket') {
    my $slow = client();
    my $h = $slow->post_start('/handshake',
                [ { channel => '/meta/handshake', version => '1.0',
                    supportedConnectionTypes => ['long-polling'],
                    id => '1', ext => { who => 'slow' } } ]);
    sleep 0.1;
    my $t0 = time;
    my ($text, $r, $carrier) = main::handshake($t, ext => { who => 'fast' });
    ok $r->{successful}, "$t: the fast one accepted";
    cmp_ok time - $t0, '<', 0.6, "$t: without waiting for the slow one";
    ok main::works($t, $r, $carrier), "$t: its session works";
    my $res = $slow->post_finish($h, timeout => 10);
    is $res->body, "[$main::DENIED]", "$t: the slow one denied";
}
--- no_error_log
[error]

=== TEST 10: inherited from the server level; "off" undoes it
--- config
    bayeux_handshake_request /_app/handshake;
    location /cometd {
        bayeux;
    }
    location /open {
        bayeux;
        bayeux_handshake_request off;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
$main::APP->clear;
$main::APP->answer('/_app/handshake', status => 403);
my $r = client()->handshake;
is $r->{error}, '403::handshake_denied', 'inherited';
$r = client(path => '/open')->handshake;
ok $r->{successful}, 'off';
is scalar @{ $main::APP->requests }, 1, 'asked once';

=== TEST 11: a value that is not a URI fails nginx -t, naming the directive
--- config
    location /cometd {
        bayeux;
        bayeux_handshake_request app/handshake;
    }
--- must_die
--- error_log
"bayeux_handshake_request" must be a URI starting with "/"
