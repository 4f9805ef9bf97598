// The real desktop app under Xvfb: it starts, its local API answers, its window is not blank,
// SIGTERM ends it with exit code 0; in a system tray (trayer, XEmbed) its icon's menu opens,
// closing the window ends its process (the window runs in one of its own) and "Open window" brings it
// back. Records memory (window open, closed after being open, started hidden) and the time from
// launch to the API answering into tests/out/desktop-figures.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { BIN, OUT, ROOT, run, freePort, waitFor, FAST_CONFIG } from "./harness.mjs";
import { screenshot, memory, settledMemory } from "./desktop-harness.mjs";
import { execFileSync } from "node:child_process";

const figures = {};

function appArgs(dir, port, extra = []) {
  return ["--data-dir", dir, "--config", join(dir, "config.toml"), "--listen", `127.0.0.1:${port}`, ...extra];
}

async function launch(extra = []) {
  const dir = mkdtempSync(join(tmpdir(), "kkt-desktop-"));
  writeFileSync(join(dir, "config.toml"), FAST_CONFIG);
  const port = await freePort();
  const started = Date.now();
  const app = run(join(BIN, "kkt-adapter"), appArgs(dir, port, extra), /listening on (http:\/\/\S+)/);
  const base = `http://127.0.0.1:${port}`;
  await waitFor("the local API", async () => (await fetch(`${base}/v1/health`)).ok, 60000);
  return { app, base, dir, port, apiAfterMs: Date.now() - started };
}

test("the desktop app starts, answers, shows a window and exits 0 on SIGTERM", async () => {
  assert.ok(process.env.DISPLAY, "run under Xvfb (DISPLAY)");
  const { app, base, apiAfterMs } = await launch();
  figures.launch_to_api_ms = apiAfterMs;
  const r = await fetch(`${base}/v1/kkt/receipt`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": "smoke-1" },
    body: JSON.stringify({ pos_id: "POS-001", type: "sale", items: [{ name: "Test", price: 100, qty: 1 }], payments: [{ type: "cash", amount: 100 }] }),
  });
  assert.equal(r.status, 200);
  // The window paints the page: the screen is no longer one flat color.
  const shot = join(OUT, "desktop-window.png");
  await waitFor("a painted window", async () => screenshot(shot) > 0.05, 30000);
  await waitFor("the page's numbers", async () => (await (await fetch(`${base}/v1/kkt/buffer/status`)).json()).synced === 1, 20000);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // let the 1 s poll paint the synced count for the picture
  screenshot(shot);
  figures.window_open = memory(app.child.pid);
  const { code, signal } = await app.stop("SIGTERM");
  assert.equal(signal, null, app.log());
  assert.equal(code, 0, app.log());
});

const X11 = ["/usr/bin/python3", join(ROOT, "tests", "e2e", "x11.py")];
const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
const visibleWindow = () => { try { return sh("xdotool", ["search", "--onlyvisible", "--name", "^KKT Adapter$"]).split("\n")[0]; } catch { return ""; } };
const geometry = (win) => Object.fromEntries(sh("xdotool", ["getwindowgeometry", "--shell", win]).split("\n").map((l) => l.split("=")).map(([k, v]) => [k, Number(v)]));

test("in a system tray: the icon's menu, close to tray frees the webview, Open window brings it back", async () => {
  // trayer is an XEmbed tray; with no StatusNotifier host on the bus, libayatana-appindicator
  // falls back to an XEmbed icon, as on a desktop without SNI support.
  const tray = run("trayer", ["--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
    "--SetDockType", "true", "--transparent", "false", "--tint", "0x808080"], /$^/);
  tray.ready.catch(() => {});
  try {
    await waitFor("the system tray", async () => { try { return sh(X11[0], [X11[1], "tray-owner"]); } catch { return false; } }, 20000);
    const { app, base } = await launch();
    const win = await waitFor("the window", async () => visibleWindow(), 30000);
    const icon = await waitFor("the tray icon", async () => {
      try { return sh("xdotool", ["search", "--onlyvisible", "--classname", "tray-icon tray app kkt"]).split("\n")[0]; } catch { return ""; }
    }, 30000);
    await waitFor("a painted window", async () => screenshot(join(OUT, "tray-window-open.png")) > 0.05, 30000);
    await waitFor("the web process", async () => memory(app.child.pid).processes.some((p) => /WebKitWebProces/.test(p)), 20000);
    figures.window_open_in_tray_test = await settledMemory(app.child.pid);

    // The window lives in a process of its own (src-tauri/src/window.rs), a child of the tray app.
    const windowProcesses = () => memory(app.child.pid).processes.filter((p) => /^kkt-adapter/.test(p)).length;
    assert.equal(windowProcesses(), 2, `the tray app and its window process: ${memory(app.child.pid).processes}`);
    // Close as a window manager's close button does: the app stays, the window's process goes.
    sh(X11[0], [X11[1], "close", win]);
    await waitFor("the window hidden and its processes gone", async () =>
      !visibleWindow() && !memory(app.child.pid).processes.some((p) => /WebKit/.test(p)) && windowProcesses() === 1, 20000);
    assert.equal((await fetch(`${base}/v1/health`)).status, 200, "the core keeps serving with the window closed");
    figures.window_closed_after_open = await settledMemory(app.child.pid);
    assert.ok(figures.window_closed_after_open.pssMiB < figures.window_open_in_tray_test.pssMiB - 50,
      `closing the window frees memory: ${JSON.stringify(figures)}`);

    // The tray icon's menu: the status line and the three actions. Keep a picture for the README.
    const g = geometry(icon);
    execFileSync("xdotool", ["mousemove", String(g.X + g.WIDTH / 2), String(g.Y + g.HEIGHT / 2), "click", "1"]);
    const menu = await waitFor("the tray menu", async () => {
      const line = sh("xwininfo", ["-root", "-children"]).split("\n")
        .find((l) => /"kkt-adapter": \("kkt-adapter"/.test(l) && !/10x10/.test(l));
      return line ? line.trim().split(/\s+/)[0] : "";
    }, 10000);
    const m = geometry(menu);
    const shot = join(OUT, "tray-menu.png");
    await waitFor("a painted menu", async () => screenshot(shot) > 0.05, 10000);
    const left = Math.max(0, m.X - 24), width = 1280 - left;
    execFileSync("/usr/bin/convert", [shot, "-crop", `${width}x${m.Y + m.HEIGHT + 8}+${left}+0`, "+repage", shot]);

    // "Open window" (the first item that can be chosen) opens a new window with a new webview.
    execFileSync("xdotool", ["key", "Down", "Return"]);
    await waitFor("the window again", async () => visibleWindow(), 20000);
    await waitFor("a new web process", async () => memory(app.child.pid).processes.some((p) => /WebKitWebProces/.test(p)), 20000);
    const { code } = await app.stop("SIGTERM");
    assert.equal(code, 0, app.log());
  } finally {
    await tray.stop("SIGTERM");
  }
});

const hasBusName = (name) => /boolean true/.test(execFileSync("dbus-send", ["--session", "--print-reply",
  "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", `string:${name}`]).toString());

test("alerts reach a real notification daemon (dunst) over D-Bus", async () => {
  const dunst = run("dunst", [], /$^/);
  dunst.ready.catch(() => {});
  const monitor = run("dbus-monitor", ["--session", "interface='org.freedesktop.Notifications',member='Notify'"], /$^/);
  monitor.ready.catch(() => {});
  try {
    await waitFor("the notification daemon on the session bus", async () => hasBusName("org.freedesktop.Notifications"), 20000);
    // An OFD address where nothing listens: five failed sends open the breaker → "OFD offline".
    const deadOfd = `http://127.0.0.1:${await freePort()}`;
    const { app, base } = await launch(["--hidden", "--ofd-url", deadOfd]);
    const r = await fetch(`${base}/v1/kkt/receipt`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": "notify-1" },
      body: JSON.stringify({ pos_id: "POS-001", type: "sale", items: [{ name: "Test", price: 100, qty: 1 }], payments: [{ type: "cash", amount: 100 }] }),
    });
    assert.equal(r.status, 200);
    await waitFor("the OFD-offline notification on the bus", async () => /ОФД недоступен \(OFD offline\)/.test(monitor.log()), 30000);
    assert.match(monitor.log(), /string "KKT Adapter"/);
    // The bubble on the screen (dunst draws it at the top right).
    const shot = join(OUT, "notification.png");
    await waitFor("the bubble on the screen", async () => screenshot(shot) > 0.02, 10000);
    assert.ok(!/notifications are unavailable/.test(app.log()), app.log());
    const { code } = await app.stop("SIGTERM");
    assert.equal(code, 0, app.log());
  } finally {
    await monitor.stop("SIGTERM");
    await dunst.stop("SIGTERM");
  }
});

test("started hidden (tray only, as autostart does) it runs without a webview", async () => {
  const { app, base } = await launch(["--hidden"]);
  const s = await (await fetch(`${base}/v1/kkt/buffer/status`)).json();
  assert.equal(s.worker.running, true);
  figures.window_closed = await settledMemory(app.child.pid);
  assert.ok(!figures.window_closed.processes.some((p) => /WebKitWebProces/.test(p)), figures.window_closed.processes.join(","));
  // Issue 13: after the window closes, the app is back within ~20 MB of never having opened it.
  if (figures.window_closed_after_open) {
    const extra = figures.window_closed_after_open.rssMiB - figures.window_closed.rssMiB;
    assert.ok(extra < 25, `closed after use keeps ${extra.toFixed(1)} MiB RSS more than never opened: ${JSON.stringify(figures)}`);
  }
  const { code } = await app.stop("SIGTERM");
  assert.equal(code, 0, app.log());
  writeFileSync(join(OUT, "desktop-figures.json"), JSON.stringify(figures, null, 1));
});

test("a second launch hands over to the running app and exits, leaving one instance serving", async () => {
  const { app, base, dir, port } = await launch();
  // The running app announces itself on the session bus; the second launch looks for it there.
  await waitFor("the single-instance name on D-Bus", async () => {
    const out = execFileSync("dbus-send", ["--session", "--print-reply", "--dest=org.freedesktop.DBus",
      "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:ru.kkt-adapter.desktop.SingleInstance"]).toString();
    return /boolean true/.test(out);
  }, 20000);
  const second = run(join(BIN, "kkt-adapter"), appArgs(dir, port), /$^/);
  second.ready.catch(() => {}); // it is expected to exit without announcing anything
  const { code } = await second.exited;
  assert.equal(code, 0, second.log());
  assert.ok(!/another KKT Adapter instance|cannot listen/.test(second.log()), second.log());
  assert.equal((await fetch(`${base}/v1/health`)).status, 200, "the first instance still serves");
  const { code: first } = await app.stop("SIGTERM");
  assert.equal(first, 0, app.log());
});

test("without a display it says to use kkt-adapterd and exits non-zero, no panic", async () => {
  const env = { DISPLAY: "", WAYLAND_DISPLAY: "" };
  const app = run(join(BIN, "kkt-adapter"), ["--listen", "127.0.0.1:0"], /kkt-adapterd/, env);
  await app.ready;
  const { code } = await app.exited;
  assert.equal(code, 2);
  assert.ok(!/panicked/.test(app.log()), app.log());
});

test("a data directory that was given but does not exist is refused before anything is written", async () => {
  const parent = mkdtempSync(join(tmpdir(), "kkt-desktop-"));
  writeFileSync(join(parent, "config.toml"), FAST_CONFIG);
  const missing = join(parent, "mnt", "shop", "kkt");
  const app = run(join(BIN, "kkt-adapter"), ["--data-dir", missing, "--config", join(parent, "config.toml"), "--listen", "127.0.0.1:0"], /does not exist/);
  await app.ready;
  const { code } = await app.exited;
  assert.notEqual(code, 0, app.log());
  assert.ok(!existsSync(missing), "no directory (not even logs/) was created");
  assert.ok(!/panicked/.test(app.log()), app.log());
});
