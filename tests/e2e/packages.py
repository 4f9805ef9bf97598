#!/usr/bin/env python3
"""The packages of scripts/package.sh, installed as a shop would install them (issue 12).

.deb (on this machine, as root): the contents; `dpkg -i`; the service's user, admin token, state
directory and a unit that is not enabled; `systemd-analyze verify` of the unit; the installed
kkt-adapterd run exactly as the unit runs it (its user, config and state directory) answers the
seed's receipt and stops in order on SIGTERM; an upgrade to a rebuilt package (revision 2) keeps
the receipts (the seed's replay returns the same bytes); remove keeps them; purge deletes them.

Windows installer (under Wine, fresh WINEPREFIX): `setup.exe /S` installs per user into
%LOCALAPPDATA%\\Programs\\KKT Adapter with Start menu entries, the "start with Windows" Run value
and an "Apps & features" entry; the installed kkt-adapterd.exe answers the seed's receipt; the
silent uninstaller keeps the receipts; `/PURGE` deletes them.

Usage: python3 tests/e2e/packages.py   (after `bash scripts/package.sh`; as root, it installs a package)
"""
import glob, grp, json, os, pwd, re, shutil, signal, stat, subprocess, tempfile, uuid
from checks import ROOT, SEED, check, finish, free_disk, free_port, healthy, keep_if_failed, receipt, wait

DIST = os.path.join(ROOT, "dist")
WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def version():
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    return re.search(r'\[workspace\.package\][^\[]*?\nversion = "([^"]+)"', text).group(1)


def service_like_run(port, log):
    """kkt-adapterd as the unit starts it, on another port (flags win over the config file). setpriv
    execs the daemon itself as the service user, so a SIGTERM reaches it as systemd's would."""
    return subprocess.Popen(["setpriv", "--reuid=kkt-adapter", "--regid=kkt-adapter", "--init-groups", "/usr/bin/kkt-adapterd",
                             "--config", "/etc/kkt-adapter/config.toml", "--data-dir", "/var/lib/kkt-adapter",
                             "--listen", f"127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL, stdout=open(log, "a"), stderr=subprocess.STDOUT)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "still running"


def test_deb(work):
    v = version()
    debs = glob.glob(os.path.join(DIST, f"kkt-adapter_{v}-1_amd64.deb"))
    if not debs:
        check(f"dist/kkt-adapter_{v}-1_amd64.deb exists (bash scripts/package.sh)", False)
        return
    deb = debs[0]
    listing = run("dpkg-deb", "-c", deb).stdout
    wanted = ["./usr/bin/kkt-adapterd", "./usr/bin/kkt-adapter", "./lib/systemd/system/kkt-adapterd.service",
              "./usr/share/applications/kkt-adapter.desktop", "./usr/share/icons/hicolor/128x128/apps/kkt-adapter.png",
              "./etc/kkt-adapter/config.toml"]
    missing = [w for w in wanted if w not in listing]
    check("the .deb holds both programs, the unit, the desktop entry, icons and the config", not missing, missing)
    conffiles = run("dpkg-deb", "-f", deb, "Conffiles").stdout + run("sh", "-c", f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles").stdout
    check("the config is a conffile (an upgrade keeps the shop's edits)", "/etc/kkt-adapter/config.toml" in conffiles)
    check("the package version is the workspace version", run("dpkg-deb", "-f", deb, "Version").stdout.strip() == f"{v}-1")
    r = run("desktop-file-validate", os.devnull) if shutil.which("desktop-file-validate") else None
    if r is not None:
        entry = os.path.join(work, "kkt-adapter.desktop")
        shutil.copy(os.path.join(ROOT, "deploy", "debian", "kkt-adapter.desktop"), entry)
        r = run("desktop-file-validate", entry)
        check("the desktop entry validates", r.returncode == 0, r.stdout + r.stderr)

    run("dpkg", "-P", "kkt-adapter")  # a previous run's leftovers
    r = run("dpkg", "-i", deb)
    check("dpkg -i installs it", r.returncode == 0, r.stdout[-800:] + r.stderr[-800:])
    if r.returncode != 0:
        return
    check("kkt-adapterd and kkt-adapter are on the PATH", shutil.which("kkt-adapterd") == "/usr/bin/kkt-adapterd"
          and shutil.which("kkt-adapter") == "/usr/bin/kkt-adapter")
    try:
        user = pwd.getpwnam("kkt-adapter")
        check("a system user kkt-adapter exists (no login shell)", user.pw_uid < 1000 and "nologin" in user.pw_shell, user)
    except KeyError:
        check("a system user kkt-adapter exists", False)
        return
    token = "/etc/kkt-adapter/admin_token"
    st = os.stat(token)
    check("the admin token is made at install: 64 hex, mode 0640, root:kkt-adapter",
          re.fullmatch(r"[0-9a-f]{64}", open(token).read()) and stat.S_IMODE(st.st_mode) == 0o640
          and st.st_uid == 0 and grp.getgrgid(st.st_gid).gr_name == "kkt-adapter", oct(st.st_mode))
    token_before = open(token).read()
    st = os.stat("/var/lib/kkt-adapter")
    check("the state directory /var/lib/kkt-adapter belongs to the service user, mode 0700",
          st.st_uid == user.pw_uid and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode))
    check("the unit is installed and not enabled",
          os.path.isfile("/lib/systemd/system/kkt-adapterd.service")
          and not os.path.exists("/etc/systemd/system/multi-user.target.wants/kkt-adapterd.service"))
    if shutil.which("systemd-analyze"):
        r = run("systemd-analyze", "verify", "/lib/systemd/system/kkt-adapterd.service")
        problems = [l for l in (r.stdout + r.stderr).splitlines() if "kkt-adapterd" in l]
        check("systemd-analyze verify finds nothing wrong with the unit", r.returncode == 0 and not problems,
              r.stdout + r.stderr)
    else:
        print("# systemd-analyze is not installed: the unit's verification is skipped")

    port = free_port()
    api = f"http://127.0.0.1:{port}"
    log = os.path.join(work, "service.log")
    d = service_like_run(port, log)
    up = wait("the installed kkt-adapterd", healthy(api), fatal=False)
    key = str(uuid.uuid4())
    first = receipt(api, SEED, key) if up else (None, None, b"")
    check("the installed kkt-adapterd, run as the unit runs it, prints the seed's receipt",
          first[0] == 200 and json.loads(first[2])["status"] == "printed", first[0])
    check("SIGTERM: orderly stop, exit code 0", stop(d) == 0, open(log).read()[-500:])
    check("its receipts are in /var/lib/kkt-adapter", os.path.isfile("/var/lib/kkt-adapter/buffer.db"))

    # A separate run on a temp data directory, as a person would try it.
    tmpdata = os.path.join(work, "data"); os.mkdir(tmpdata)
    port2 = free_port()
    p = subprocess.Popen(["/usr/bin/kkt-adapterd", "--data-dir", tmpdata, "--listen", f"127.0.0.1:{port2}",
                          "--admin-token", "x" * 32], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait("kkt-adapterd on a temp data directory", healthy(f"http://127.0.0.1:{port2}"), fatal=False)
    a = receipt(f"http://127.0.0.1:{port2}", SEED, str(uuid.uuid4()))
    check("the installed kkt-adapterd on a temp data directory prints the seed's receipt", a[0] == 200, a[0])
    check("and stops with exit code 0", stop(p) == 0)

    # Upgrade to a rebuilt package.
    rebuilt = os.path.join(work, "rebuilt")
    r = run("cargo", "deb", "-p", "kkt-adapter-desktop", "--no-build", "--strip", "--deb-revision", "2", "-o", rebuilt, cwd=ROOT)
    new = glob.glob(os.path.join(rebuilt, "*.deb"))
    check("a rebuilt package (revision 2) is made", r.returncode == 0 and new, r.stderr[-500:])
    if new:
        r = run("dpkg", "-i", new[0])
        installed = run("dpkg-query", "-W", "-f", "${Version}", "kkt-adapter").stdout
        check("dpkg -i upgrades to it", r.returncode == 0 and installed == f"{v}-2", installed + r.stderr[-500:])
        check("the upgrade keeps the admin token", open(token).read() == token_before)
        d = service_like_run(port, log)
        wait("kkt-adapterd after the upgrade", healthy(api), fatal=False)
        again = receipt(api, SEED, key)
        check("after the upgrade the receipts are kept: the seed's replay returns the same bytes",
              again[0] == 200 and again[2] == first[2] and again[1].get("Idempotent-Replayed") == "true", again[0])
        check("and it stops with exit code 0", stop(d) == 0)

    r = run("dpkg", "-r", "kkt-adapter")
    check("dpkg -r removes the programs", r.returncode == 0 and not os.path.exists("/usr/bin/kkt-adapterd"), r.stderr)
    check("remove keeps the receipts, the config and the token",
          os.path.isfile("/var/lib/kkt-adapter/buffer.db") and os.path.isfile("/etc/kkt-adapter/config.toml")
          and os.path.isfile(token))
    r = run("dpkg", "-P", "kkt-adapter")
    check("dpkg -P purges: receipts, config and token are gone", r.returncode == 0
          and not os.path.exists("/var/lib/kkt-adapter") and not os.path.exists("/etc/kkt-adapter"), r.stderr)
    check("nothing of the package is left in dpkg's database",
          run("dpkg-query", "-W", "kkt-adapter").returncode != 0)


def test_windows_installer(work):
    v = version()
    setup = os.path.join(DIST, f"KKT-Adapter-{v}-setup.exe")
    if not os.path.isfile(setup):
        check(f"dist/KKT-Adapter-{v}-setup.exe exists (bash scripts/package.sh)", False)
        return
    env = dict(os.environ, WINEPREFIX=os.path.join(work, "prefix"), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
    subprocess.run([WINE, "wineboot", "-i"], env=env, capture_output=True, timeout=180, check=True)
    user = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
    home = os.path.join(work, "prefix", "drive_c", "users", user)
    instdir = os.path.join(home, "AppData", "Local", "Programs", "KKT Adapter")
    data = os.path.join(home, "AppData", "Roaming", "KKT Adapter")
    wine = lambda *a, **kw: subprocess.run([WINE, *a], env=env, capture_output=True, text=True, timeout=120, **kw)
    reg = lambda key, value: wine("reg", "query", key, "/v", value).stdout

    r = wine(setup, "/S")
    # NSIS exits 1 when the user cancels, 2 when the script aborts (a file it cannot write: a full disk, a
    # program of ours still running and holding its .exe).
    check("setup.exe /S installs silently (exit 0)", r.returncode == 0,
          f"{r.returncode}{' (aborted: ' + free_disk() + ')' if r.returncode == 2 else ''}")
    files = sorted(os.listdir(instdir)) if os.path.isdir(instdir) else []
    check("per-user install into %LOCALAPPDATA%\\Programs\\KKT Adapter",
          {"kkt-adapter.exe", "kkt-adapterd.exe", "uninstall.exe"} <= set(files), files)
    menu = os.path.join(home, "AppData", "Roaming", "Microsoft", "Windows", "Start Menu", "Programs", "KKT Adapter")
    check("Start menu entries", os.path.isfile(os.path.join(menu, "KKT Adapter.lnk"))
          and os.path.isfile(os.path.join(menu, "Uninstall KKT Adapter.lnk")), os.listdir(os.path.dirname(menu)))
    run_key = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run"
    check("\"start with Windows\" is on by default (Run value, --hidden)",
          "kkt-adapter.exe" in reg(run_key, "KKT Adapter") and "--hidden" in reg(run_key, "KKT Adapter"))
    uninst = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\KKT Adapter"
    check("\"Apps & features\" entry with the version", v in reg(uninst, "DisplayVersion"), reg(uninst, "DisplayVersion"))

    # The test's stand-in for Wine's missing bcryptprimitives.dll (tests/wine/bcryptprimitives.c), beside the
    # installed daemon in this throw-away prefix only.
    subprocess.run(["x86_64-w64-mingw32-gcc", "-O2", "-shared", "-o", os.path.join(instdir, "bcryptprimitives.dll"),
                    os.path.join(ROOT, "tests", "wine", "bcryptprimitives.c"), "-ladvapi32"], check=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    d = subprocess.Popen([WINE, os.path.join(instdir, "kkt-adapterd.exe"), "--listen", f"127.0.0.1:{port}"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = wait("the installed kkt-adapterd.exe", healthy(api), fatal=False)
    a = receipt(api, SEED, str(uuid.uuid4())) if up else (None, None, b"")
    check("the installed kkt-adapterd.exe prints the seed's receipt", a[0] == 200, a[0])
    d.send_signal(signal.SIGINT)
    check("and stops on Ctrl+C with exit code 0", d.wait(30) == 0)
    os.remove(os.path.join(instdir, "bcryptprimitives.dll"))

    # The uninstaller copies itself to %TEMP% and returns at once: wait for the files to go.
    wine(os.path.join(instdir, "uninstall.exe"), "/S")
    gone = wait("the uninstaller", lambda: not os.path.exists(os.path.join(instdir, "kkt-adapterd.exe")), 60, fatal=False)
    check("uninstall.exe /S removes the programs and the Run value",
          gone and "kkt-adapter.exe" not in reg(run_key, "KKT Adapter"))
    check("uninstall keeps the receipts (%APPDATA%\\KKT Adapter)",
          os.path.isfile(os.path.join(data, "kkt-adapter", "data", "buffer.db")))
    wine(setup, "/S")
    wine(os.path.join(instdir, "uninstall.exe"), "/S", "/PURGE")
    purged = wait("the uninstaller with /PURGE", lambda: not os.path.exists(data), 60, fatal=False)
    check("uninstall.exe /S /PURGE deletes the receipts and settings", purged)
    subprocess.run([os.path.join(os.path.dirname(WINE), "wineserver"), "-k"], env=env, capture_output=True)


def main():
    if os.geteuid() != 0:
        raise SystemExit("run as root: this test installs and purges the .deb")
    work = tempfile.mkdtemp(prefix="kkt-packages-")
    os.chmod(work, 0o755)
    try:
        for name in sorted(os.listdir(DIST)) if os.path.isdir(DIST) else []:
            path = os.path.join(DIST, name)
            if os.path.isfile(path):
                print(f"# dist/{name}: {os.path.getsize(path) / 1e6:.1f} MB")
        test_deb(work)
        test_windows_installer(work)
    finally:
        keep_if_failed(work)
    finish("packages")


if __name__ == "__main__":
    main()
