# make deb: the Debian package libnginx-mod-http-bayeux (debian/,
# util/deb).  Builds it with dpkg-buildpackage in a directory of its own,
# checks what it holds and depends on, that lintian finds no errors, that
# nginx -t accepts a bayeux location with the module enabled the way the
# package enables it (modules-enabled/ -> modules-available/), and that
# the packaged .so serves a handshake.
#
# Building takes 20 to 40 seconds: the file runs under CI=true or
# TEST_BAYEUX_DEB=1, and is skipped otherwise.  Installing the package
# (dpkg, as root) changes the machine: only under CI=true or
# TEST_BAYEUX_DEB_INSTALL=1; the package is purged afterwards unless it
# was installed before.

use strict;
use warnings;

use lib 't/lib';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use Test::More;
use Test::Nginx::Bayeux::Server;

my $top = abs_path(dirname(__FILE__) . '/..');
my $ci = ($ENV{CI} // '') eq 'true';

plan skip_all => 'building a .deb takes time: set TEST_BAYEUX_DEB=1'
    unless $ci || $ENV{TEST_BAYEUX_DEB};
plan skip_all => 'the package is for /usr/sbin/nginx (make test runs this)'
    if $ENV{TEST_NGINX_BINARY}
       || ($ENV{TEST_NGINX_MODULE} // '') =~ /^(static|none)$/;
plan skip_all => 'not under valgrind' if $ENV{TEST_NGINX_USE_VALGRIND};
for my $cmd (qw(dpkg-buildpackage dh_nginx lintian fakeroot)) {
    next if system("command -v $cmd >/dev/null 2>&1") == 0;
    BAIL_OUT("$cmd missing: run util/deps deb") if $ci;
    plan skip_all => "$cmd missing: run util/deps deb";
}

my $install = ($ci || $ENV{TEST_BAYEUX_DEB_INSTALL}) && $> == 0;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

sub run_out {
    my (@cmd) = @_;
    my $out = `@cmd 2>&1`;
    return ($? >> 8, $out);
}

my ($version) = slurp("$top/src/ngx_bayeux.h")
    =~ /^#define NGX_BAYEUX_VERSION\s+"([^"]+)"/m;
ok $version, "NGX_BAYEUX_VERSION is $version";

my ($abi) = slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
    =~ /^nginx:abi=(\S+)/m;
ok $abi, "nginx-dev's ABI is $abi";

# the build, in a directory of this file's own

my $tmp = tempdir('bayeux-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $t0 = time;
my ($rc, $out) = run_out("BUILD=$tmp", "$top/util/deb");
is $rc, 0, 'util/deb succeeds' or diag $out;
diag sprintf 'util/deb (dpkg-buildpackage and lintian): %d s', time - $t0;

my ($deb) = grep { !/dbgsym/ } glob "$tmp/deb/libnginx-mod-http-bayeux_*.deb";
ok $deb && -f $deb, 'the .deb is there'
    or BAIL_OUT('no package: ' . ($out // ''));

my %f;
for my $field (qw(Package Version Depends Architecture)) {
    chomp($f{$field} = `dpkg-deb -f '$deb' $field`);
}
is $f{Package}, 'libnginx-mod-http-bayeux', 'package name';
like $f{Version}, qr/^\Q$version\E-\d+$/,
    "version $f{Version} is the module's ($version)";
my %dep = map { /^(\S+)/ ? ($1 => $_) : () } split /,\s*/, $f{Depends};
ok exists $dep{$abi}, "depends on $abi: the nginx it was built for"
    or diag $f{Depends};
for my $lib (qw(libyajl2 libhiredis0.14 libssl3)) {
    ok exists $dep{$lib}, "depends on $lib (dh_shlibdeps)"
        or diag $f{Depends};
}

my @files = map { m{\s\.(/\S+)$} ? $1 : () } split /\n/, `dpkg-deb -c '$deb'`;
my %has = map { $_ => 1 } @files;
ok $has{'/usr/lib/nginx/modules/ngx_bayeux_module.so'}, 'the module';
ok $has{'/usr/share/nginx/modules-available/mod-http-bayeux.conf'},
    'its load file in modules-available';
ok $has{'/usr/share/doc/libnginx-mod-http-bayeux/copyright'}, 'copyright';

my $ctl = "$tmp/ctl";
system('dpkg-deb', '-e', $deb, $ctl) == 0 or die "dpkg-deb -e: $?";
like slurp("$ctl/postinst"),
    qr{mod-http-bayeux\.conf:50-mod-http-bayeux\.conf},
    'postinst links modules-enabled/50-mod-http-bayeux.conf (dh_nginx)';
like slurp("$ctl/prerm"), qr{modules-enabled}, 'prerm unlinks it';

# lintian: util/deb failed on an error; the warnings, listed

my $lintian = slurp("$tmp/deb/lintian.log");
unlike $lintian, qr/^E: /m, 'lintian: no errors';
diag "lintian: $_" for grep { /^[WE]: / } split /\n/, $lintian;

# the package's files in a root of their own, laid out as nginx-common
# and the postinst lay them out: nginx -t with the module enabled
# through modules-enabled/

my $root = "$tmp/root";
system('dpkg-deb', '-x', $deb, $root) == 0 or die "dpkg-deb -x: $?";
my $prefix = "$root/usr/share/nginx";
symlink '../../lib/nginx/modules', "$prefix/modules" or die "symlink: $!";
make_path("$root/etc/nginx/modules-enabled", "$root/run");
symlink "$prefix/modules-available/mod-http-bayeux.conf",
    "$root/etc/nginx/modules-enabled/50-mod-http-bayeux.conf"
    or die "symlink: $!";

sub conf_with {
    my ($modules) = @_;
    return <<"EOF";
include $modules/*.conf;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    server {
        listen 127.0.0.1:1;
        location /cometd { bayeux; }
    }
}
EOF
}

{
    open my $fh, '>', "$root/etc/nginx/nginx.conf" or die $!;
    print $fh conf_with("$root/etc/nginx/modules-enabled");
    close $fh;
    my ($rc, $out) = run_out('/usr/sbin/nginx', '-t', '-p', "$prefix/",
                             '-c', "$root/etc/nginx/nginx.conf");
    is $rc, 0, 'nginx -t: bayeux; with the module from modules-enabled/'
        or diag $out;
}

# the packaged module (Debian's build flags) serves a handshake

{
    my $s = Test::Nginx::Bayeux::Server->new(
        module => "$root/usr/lib/nginx/modules/ngx_bayeux_module.so",
        config => 'location /cometd { bayeux; }',
    );
    $s->start;
    my $r = $s->client->handshake;
    ok $r->{successful}, 'the packaged module answers a handshake';
    $s->stop;
}

# installed (CI): dpkg's postinst links modules-enabled, nginx -t passes
# with Debian's own configuration and with a bayeux location

SKIP: {
    skip 'installing needs root and CI=true or TEST_BAYEUX_DEB_INSTALL=1', 7
        unless $install;

    my $was = `dpkg-query -W -f '\${Status}' libnginx-mod-http-bayeux 2>/dev/null`
        =~ /install ok installed/;
    # no system nginx started or reloaded by the trigger (util/deps's
    # policy-rc.d does the same)
    my $policy = !-e '/usr/sbin/policy-rc.d';
    if ($policy) {
        open my $fh, '>', '/usr/sbin/policy-rc.d' or die $!;
        print $fh "#!/bin/sh\nexit 101\n";
        close $fh;
        chmod 0755, '/usr/sbin/policy-rc.d';
    }

    my ($rc, $out) = run_out('DEBIAN_FRONTEND=noninteractive', 'apt-get',
        'install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=300',
        '--no-install-recommends', $deb);
    is $rc, 0, 'apt-get install ./libnginx-mod-http-bayeux_*.deb' or diag $out;

    my $link = '/etc/nginx/modules-enabled/50-mod-http-bayeux.conf';
    is readlink($link), '/usr/share/nginx/modules-available/mod-http-bayeux.conf',
        'enabled: modules-enabled/50-mod-http-bayeux.conf';

    ($rc, $out) = run_out('/usr/sbin/nginx', '-t');
    is $rc, 0, "nginx -t: Debian's nginx.conf loads the module" or diag $out;

    open my $fh, '>', "$tmp/nginx.conf" or die $!;
    print $fh conf_with('/etc/nginx/modules-enabled');
    close $fh;
    ($rc, $out) = run_out('/usr/sbin/nginx', '-t', '-c', "$tmp/nginx.conf");
    is $rc, 0, 'nginx -t: a bayeux location, module from modules-enabled/'
        or diag $out;

    if ($was) {
        pass 'installed before this test: left installed' for 1 .. 3;
    } else {
        ($rc, $out) = run_out('dpkg', '--purge', 'libnginx-mod-http-bayeux');
        is $rc, 0, 'dpkg --purge' or diag $out;
        ok !-e $link && !-l $link, 'purged: the modules-enabled link is gone';
        ok !-l "$link.removed", 'and no .removed link is left';
    }
    unlink '/usr/sbin/policy-rc.d' if $policy;
}

done_testing;
