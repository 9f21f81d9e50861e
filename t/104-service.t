# bayeux_service_request: /service/** messages are remote calls answered
# by the application.  Its 2xx answer is the reply to the sender only,
# {"id","channel","successful":true,"data":<its body>}; anything else is
# {"successful":false,"error":"<status>::<reason>","data":<body or {}>}.
# Nothing is broadcast.  On each transport; t/redis/010-protocol.t runs it
# on Redis.

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use Test::Bayeux::Session;

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

{
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die $!;
    $ENV{TEST_NGINX_DOWN_PORT} = $s->sockport;
    close $s;
}

our @TRANSPORTS = ('long-polling', 'callback-polling', 'websocket');

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_service_request /_app/service;
    }
    location /plain {
        bayeux;
    }
    location /down {
        bayeux;
        bayeux_service_request /_down/service;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
        proxy_read_timeout 1s;
        proxy_set_header X-Bayeux-Client $bayeux_client_id;
        proxy_set_header X-Bayeux-Channel $bayeux_channel;
    }
    location /_down/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_DOWN_PORT;
    }
CONF

run_tests();

$APP->stop;

sub count_lines {
    my ($re) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    return scalar grep { /$re/ } split /\n/, $server->error_log_text;
}

__DATA__

=== TEST 1: a remote call answered: the reply carries the application's body as data; the application got the message and the variables
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    $main::APP->answer('/_app/service', status => 200,
                       body => '{"sum":42,"of":[40,2]}');
    my $s = Test::Bayeux::Session->new($t);
    my $cid = $s->client_id;
    my ($r) = $s->send([ { channel => '/service/add', data => [40, 2],
                           ext => { trace => 'x' } } ]);
    is_deeply $r, { id => '100', channel => '/service/add',
                    successful => JSON::PP::true,
                    data => { sum => 42, of => [40, 2] } },
              "$t: the exact reply" or diag explain $r;
    my ($q) = @{ $main::APP->requests };
    is_deeply $q->{json}, { channel => '/service/add', clientId => $cid,
                            data => [40, 2], id => '100',
                            ext => { trace => 'x' } }, "$t: the call";
    is $q->{headers}{'x-bayeux-client'}, $cid, "$t: \$bayeux_client_id";
    is $q->{headers}{'x-bayeux-channel'}, '/service/add',
       "$t: \$bayeux_channel";
    $main::APP->answer('/_app/service', status => 204);
    ($r) = $s->send([ { channel => '/service/ping', data => {} } ]);
    is_deeply $r->{data}, {}, "$t: an empty answer: data {}";
    $main::APP->answer('/_app/service', status => 200, body => '"pong"');
    ($r) = $s->send([ { channel => '/service/ping', data => {} } ]);
    is $r->{data}, 'pong', "$t: any JSON value";
}
--- no_error_log
[error]

=== TEST 2: failures: <status>::<reason> with the body as data, or {}; the application down, slow, or answering garbage
--- bayeux
my @cases = (
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 404,
                         body => '{"message":"no such method"}') },
      '404::not_found', { message => 'no such method' } ],
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 403) },
      '403::forbidden', {} ],
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 500) },
      '500::server_error', {} ],
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 418,
                                          body => '[1]') },
      '418::application_error', [1] ],
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 200,
                                          delay => 2) },
      '504::application_timeout', {} ],
    [ '/cometd', sub { $main::APP->answer('/_app/service',
                                          garbage => "\x00\x01junk") },
      '502::application_unavailable', {} ],
    [ '/cometd', sub { $main::APP->answer('/_app/service', status => 200,
                                          body => 'not json') },
      '502::application_unavailable', {} ],
    [ '/down', sub { }, '502::application_unavailable', {} ],
);
for my $c (@cases) {
    my ($path, $setup, $error, $data) = @$c;
    for my $t (@main::TRANSPORTS) {
        $main::APP->clear;
        $setup->();
        my $s = Test::Bayeux::Session->new($t, path => $path);
        my @r = $s->send([ { channel => '/service/x', data => { a => 1 } },
                           { channel => '/meta/connect', connectionType => $t,
                             advice => { timeout => 0 } } ]);
        is_deeply $r[0], { id => '100', channel => '/service/x',
                           clientId => $s->client_id,
                           successful => JSON::PP::false, error => $error,
                           data => $data }, "$error ($t)"
            or diag explain $r[0];
        ok $r[1]{successful}, "$error ($t): the batch goes on";
    }
    # one error line a second: each case its own
    sleep 1.05;
}
ok main::count_lines(qr/\[error\].*bayeux: service request "\/_app\/service" failed: status 500/),
   'a 5xx is logged';
ok main::count_lines(qr/\[error\].*bayeux: service request "\/_app\/service" failed: the answer is not JSON/),
   'a 2xx that is not JSON is logged';
--- no_error_log
[alert]
[crit]

=== TEST 3: nothing is broadcast; an unknown session is not asked about; without the directive, /service is acknowledged as before
--- bayeux
my $l = $server->client;
$l->handshake;
ok $l->subscribe('/**')->{successful}, 'a listener on /**';
$l->connect(advice => { timeout => 0 });
$main::APP->answer('/_app/service', status => 200, body => '{"ok":1}');
for my $t (@main::TRANSPORTS) {
    my $s = Test::Bayeux::Session->new($t);
    my ($r) = $s->send([ { channel => '/service/x', data => { t => $t } } ]);
    ok $r->{successful}, "$t: called";
}
my $d = $l->wait_deliveries(count => 1, timeout => 1);
is scalar @$d, 0, 'nothing reached the listener';
$main::APP->clear;
my $c = $server->client;
$c->client_id('0' x 40);
my $res = $c->post('/', [ { channel => '/service/x', clientId => '0' x 40,
                            data => {}, id => '9' } ]);
is $res->{messages}[0]{error}, '402::session_unknown', 'unknown session: 402';
is scalar @{ $main::APP->requests }, 0, 'and the application was not asked';
my $p = Test::Bayeux::Session->new('long-polling', path => '/plain');
my ($r) = $p->send([ { channel => '/service/x', data => {} } ]);
is_deeply $r, { id => '100', channel => '/service/x',
                successful => JSON::PP::true }, 'no directive: as before';
--- no_error_log
[error]
