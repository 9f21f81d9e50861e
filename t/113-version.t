# The module's version: NGX_BAYEUX_VERSION in src/ngx_bayeux.h is the top
# entry of CHANGES and the version the README quotes, the handshake
# still says Bayeux 1.0 (NGX_BAYEUX_PROTOCOL_VERSION), and nginx logs the
# version at "notice" when it loads a configuration with bayeux
# locations (nginx -V cannot show a dynamic module's).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

my $REPO = $Test::Nginx::Bayeux::Server::REPO;

sub slurp {
    my ($file) = @_;
    open my $fh, '<', "$REPO/$file" or die "$file: $!\n";
    local $/;
    return <$fh>;
}

my $h = slurp('src/ngx_bayeux.h');
my ($version) = $h =~ /^#define\s+NGX_BAYEUX_VERSION\s+"([^"]+)"/m;
my ($protocol) = $h =~ /^#define\s+NGX_BAYEUX_PROTOCOL_VERSION\s+"([^"]+)"/m;

like $version, qr/^\d+\.\d+\.\d+$/, "NGX_BAYEUX_VERSION \"$version\" is x.y.z";
is $protocol, '1.0', 'NGX_BAYEUX_PROTOCOL_VERSION is Bayeux 1.0';

my $changes = slurp('CHANGES');
my ($top) = $changes
    =~ /\A\s*Changes with ngx_bayeux_module (\S+) +\d\d [A-Z][a-z]{2} \d{4}\n/;
is $top, $version, 'the top entry of CHANGES is NGX_BAYEUX_VERSION';

my @quoted = slurp('README.md') =~ m{ngx_bayeux_module/(\d+\.\d+\.\d+)}g;
is_deeply [ grep { $_ ne $version } @quoted ], [],
    'the README quotes this version (' . scalar(@quoted) . ' times)';

like slurp('LICENSE'), qr/Redistribution and use in source and binary forms/,
    'LICENSE is there';

run_tests();

__DATA__

=== TEST 1: the version is logged at notice when nginx starts
--- config
    location /a { bayeux; }
    location /b { bayeux; }
--- log_level: notice
--- request
POST /a/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "version":"1\.0","minimumVersion":"1\.0"
--- error_log eval
qr/\[notice\] .*ngx_bayeux_module\/\d+\.\d+\.\d+ \(Bayeux 1\.0\), 2 bayeux locations$/m



=== TEST 2: nothing is logged without a bayeux location
--- config
    location / { return 204; }
--- log_level: notice
--- request
GET /
--- error_code: 204
--- no_error_log
ngx_bayeux_module/
