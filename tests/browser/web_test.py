#!/usr/bin/python3
"""The web page in a real browser: headless Chromium from Debian, driven through chromedriver.

A tracker and a seeding piecemeal peer serve a torrent made here; a second piecemeal peer starts
with an empty folder and its JSON API on. The test opens the page with the token in the URL's
fragment, adds the .torrent through the page's file input, waits until the page shows 100%,
opens the torrent's detail, pauses and resumes it (checking the page and the API agree), unticks
a file, sees an API error shown in the page, is asked for a token when none is kept, removes the
torrent with its files, and compares the downloaded bytes with the seeder's. A screenshot is
saved outside the source tree (its path is printed).

Run with Debian's /usr/bin/python3 (python3-selenium is packaged for it); tests/browser/install.sh
installs chromium, chromium-driver and python3-selenium. Nothing downloads a browser: Selenium is
given /usr/bin/chromedriver and /usr/bin/chromium, and Selenium Manager is switched off. Without
a browser the test says why and fails.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # importing the interop harness must leave no __pycache__ in the tree
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
from harness import CaseFailed, Proc, compare_trees, make_content, run_tool  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOOPBACK = "127.0.0.1"
TOKEN = "web-test-token-0123456789abcdef"
# A folder torrent, so the detail lists several files; 64 KiB pieces make 80 of them.
CONTENT = {"clip.bin": 3 << 20, "notes/readme.txt": 123_457, "notes/cover.bin": 2 << 20}
PIECE_LENGTH = 64 << 10
# The seeder's upload cap: the download takes a few seconds, so the page shows it going.
SEED_RATE = "1M"
# Bounds for the waits (a loaded 2-core machine is slow to start Chromium).
START_SECS = 30
DOWNLOAD_SECS = 90
UI_SECS = 20


def main():
    args = parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="piecemeal-web-")
    procs, driver = [], None
    try:
        driver = start_browser(work)
        run(args, work, procs, driver)
        print(f"browser test: PASS in {time.monotonic() - started:.1f} s")
        return 0
    except CaseFailed as e:
        print(f"browser test: FAILED: {e}", file=sys.stderr)
        for p in procs:
            print(p.tail(), file=sys.stderr)
        if driver is not None:
            save_screenshot(driver, args, "web-page-failed.png", copy_to=None)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        for p in procs:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the piecemeal binary")
    default_artifacts = os.environ.get("ARTIFACTS_DIR") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR") or os.path.join(tempfile.gettempdir(), "piecemeal"), "browser-test"
    )
    ap.add_argument("--artifacts", default=default_artifacts, help="where the screenshot goes (outside the tree)")
    ap.add_argument("--copy-screenshot", metavar="PATH", help="also copy the screenshot here (for the README)")
    return ap.parse_args()


# ---------------------------------------------------------------- the browser


def start_browser(work):
    """Headless Chromium through chromedriver, both from Debian; a clear failure without them."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise CaseFailed(f"cannot start a browser: {', '.join(missing)} missing (run tests/browser/install.sh)")
    # Selenium Manager would otherwise look for (and download) a driver of its own choosing.
    os.environ["SE_OFFLINE"] = "true"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise CaseFailed(f"cannot start a browser: no selenium for {sys.executable} ({e}); run tests/browser/install.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the test may run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        f"--user-data-dir={os.path.join(work, 'chromium-profile')}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
    ):
        opts.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_path=os.path.join(work, "chromedriver.log"))
    try:
        driver = webdriver.Chrome(service=service, options=opts)
    except Exception as e:  # selenium raises several kinds; each means no browser
        raise CaseFailed(f"cannot start headless Chromium ({CHROMIUM} via {CHROMEDRIVER}): {e}") from e
    driver.set_page_load_timeout(START_SECS)
    return driver


def wait_for(driver, what, condition, secs=UI_SECS):
    """condition(driver) until it is truthy (returned), or fail saying what was awaited."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, secs, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]).until(
            condition
        )
    except TimeoutException:
        raise CaseFailed(f"the page did not show {what} within {secs} s") from None


def find_all(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def find(driver, css):
    """The first element matching css, or None."""
    found = find_all(driver, css)
    return found[0] if found else None


def text_of(driver, css):
    e = find(driver, css)
    return e.text if e is not None else None


def save_screenshot(driver, args, name, copy_to):
    os.makedirs(args.artifacts, exist_ok=True)
    path = os.path.abspath(os.path.join(args.artifacts, name))
    if driver.save_screenshot(path):
        print(f"browser test: screenshot {path}")
        if copy_to:
            shutil.copyfile(path, copy_to)
            print(f"browser test: copied to {copy_to}")
    else:
        print(f"browser test: could not save a screenshot to {path}", file=sys.stderr)


# ---------------------------------------------------------------- the API, as a script sees it


def api_get(rpc, path):
    req = urllib.request.Request(f"http://{rpc}{path}", headers={"X-Piecemeal-Token": TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise CaseFailed(f"GET {path} on the API failed: {e}") from e


def wait_api_status(rpc, torrent_id, want, secs=UI_SECS):
    deadline = time.monotonic() + secs
    while True:
        status = api_get(rpc, f"/api/torrents/{torrent_id}")["status"]
        if status in want:
            return status
        if time.monotonic() > deadline:
            raise CaseFailed(f"the API says {torrent_id} is {status}, not {' or '.join(want)}, after {secs} s")
        time.sleep(0.2)


# ---------------------------------------------------------------- the scenario


def run(args, work, procs, driver):
    binary = os.path.abspath(args.bin)
    logs = os.path.join(work, "logs")
    os.makedirs(logs)

    tracker = Proc("tracker", [binary, "tracker", "--bind", f"{LOOPBACK}:0", "--interval", "5"], logs)
    procs.append(tracker)
    addr = tracker.wait_line(r"^tracker listening on (\S+:\d+)\s*$", deadline(START_SECS), "its address").group(1)
    announce = f"http://{addr}/announce"

    seed_dir, leech_dir = os.path.join(work, "seed"), os.path.join(work, "leech")
    os.makedirs(leech_dir)
    content = make_content(seed_dir, "web-test", CONTENT, seed=11)
    torrent = os.path.join(work, "web-test.torrent")
    out = run_tool(
        [binary, "create", content, "-a", announce, "-l", PIECE_LENGTH, "-o", torrent], 60, "piecemeal create"
    )
    info_hash = out.split("(info hash ", 1)[1].split(")", 1)[0]
    pieces = -(-sum(CONTENT.values()) // PIECE_LENGTH)

    seeder = Proc(
        "seeder",
        [binary, "peer", "--dir", seed_dir, "--torrent", torrent, "--bind", LOOPBACK, "--port", "0", "--no-dht",
         "--max-upload-rate", SEED_RATE],
        logs,
    )
    procs.append(seeder)
    seeder.wait_line(rf"^seeding {info_hash} ", deadline(START_SECS), "`seeding HASH`")

    peer = Proc(
        "peer (rpc)",
        [binary, "peer", "--dir", leech_dir, "--bind", LOOPBACK, "--port", "0", "--no-dht",
         "--rpc", f"{LOOPBACK}:0", "--rpc-token", TOKEN],
        logs,
    )
    procs.append(peer)
    rpc = peer.wait_line(r"^rpc listening on http://(\S+)/\s*$", deadline(START_SECS), "`rpc listening on`").group(1)

    # The page, with the token in the fragment (the server never sees it there).
    driver.get(f"http://{rpc}/#token={TOKEN}")
    wait_for(driver, "the torrent list", lambda d: find(d, "#app") and find(d, "#app").is_displayed())
    wait_for(driver, "the session line", lambda d: (text_of(d, "#session") or "").startswith("piecemeal "))
    wait_for(driver, "an empty list", lambda d: find(d, "#empty").is_displayed())
    if "token" in driver.current_url:
        raise CaseFailed(f"the token stays in the address bar: {driver.current_url}")
    check_formats(driver)

    # Adding through the form's file input.
    find(driver, "#add-file").send_keys(torrent)
    find(driver, "#add-submit").click()
    row = f'tr[data-testid="torrent-row"][data-id="{info_hash}"]'
    wait_for(driver, "the added torrent", lambda d: find(d, row))
    name = text_of(driver, f"{row} [data-testid=torrent-name]")
    if name != "web-test":
        raise CaseFailed(f"the row names the torrent {name!r}, want 'web-test'")

    # Live updates: the page is never reloaded, yet it reaches 100%.
    seen = []

    def complete(d):
        shown = text_of(d, f"{row} [data-testid=torrent-progress]")
        if shown and (not seen or seen[-1] != shown):
            seen.append(shown)
        return shown == "100%" and text_of(d, f"{row} [data-testid=torrent-status]") == "seeding"

    wait_for(driver, "100% and seeding", complete, DOWNLOAD_SECS)
    print(f"browser test: progress shown: {' '.join(seen)}")
    if len(seen) < 2:
        raise CaseFailed(f"the page showed only {seen} while a capped download ran: it does not update live")
    problem = compare_trees(content, os.path.join(leech_dir, "web-test"))
    if problem:
        raise CaseFailed(f"the download differs from the seeder's files: {problem}")

    # The detail: every piece verified in the picture's caption, the files, the tracker.
    find(driver, f"{row} [data-testid=torrent-name]").click()
    wait_for(driver, "the detail", lambda d: find(d, "#detail").is_displayed())
    want_caption = f"{pieces} of {pieces} verified"
    wait_for(driver, f"'{want_caption}'", lambda d: text_of(d, "#pieces-count") == want_caption)
    wait_for(driver, "3 files, all ticked", lambda d: files_ticked(d) == [True, True, True])
    wait_for(driver, "the tracker", lambda d: announce in (text_of(d, "#trackers") or ""))
    undone = driver.execute_script(PIXELS_NOT_DONE)
    if undone != 0:
        raise CaseFailed(f"the pieces picture of a complete torrent has {undone} pixel columns not in the done colour")
    paths = text_of(driver, "#files")
    for rel in CONTENT:
        if rel not in paths:
            raise CaseFailed(f"the files table lacks {rel}: {paths!r}")
    driver.execute_script("window.scrollTo(0, 0)")
    save_screenshot(driver, args, "web-page.png", args.copy_screenshot)

    # Pause: the page and the API agree.
    find(driver, f"{row} [data-testid=torrent-pause]").click()
    wait_for(driver, "'paused'", lambda d: text_of(d, f"{row} [data-testid=torrent-status]") == "paused")
    wait_api_status(rpc, info_hash, {"paused"})
    if find(driver, f"{row} [data-testid=torrent-pause]").is_displayed():
        raise CaseFailed("a paused torrent still offers Pause")

    # Resume: it checks its files and seeds again, without fetching anything.
    wait_for(driver, "a Resume button", lambda d: find(d, f"{row} [data-testid=torrent-resume]").is_displayed())
    find(driver, f"{row} [data-testid=torrent-resume]").click()
    wait_for(
        driver,
        "'seeding' again after resume",
        lambda d: text_of(d, f"{row} [data-testid=torrent-status]") == "seeding",
        DOWNLOAD_SECS,
    )
    wait_api_status(rpc, info_hash, {"seeding"})
    problem = compare_trees(content, os.path.join(leech_dir, "web-test"))
    if problem:
        raise CaseFailed(f"after pause and resume the files differ from the seeder's: {problem}")

    # Choosing files: untick one in the detail, and the API says it is no longer fetched.
    boxes = find_all(driver, "#files tr")
    skip = next((i for i, tr in enumerate(boxes) if tr.text and "readme.txt" in tr.text), None)
    if skip is None:
        raise CaseFailed(f"no readme.txt row in the files table: {text_of(driver, '#files')!r}")
    boxes[skip].find_element("css selector", "input[type=checkbox]").click()
    find(driver, "#files-apply").click()
    wait_for(driver, "'Fetching 2 of 3 files'", lambda d: "Fetching 2 of 3 files" in (text_of(d, "#notice") or ""))
    wanted = [f["wanted"] for f in api_get(rpc, f"/api/torrents/{info_hash}")["files"]]
    if wanted.count(False) != 1 or len(wanted) != 3:
        raise CaseFailed(f"after unticking one file the API says wanted={wanted}")
    wait_for(driver, "the unticked box after a refresh", lambda d: files_ticked(d).count(False) == 1)

    # An API error reaches the page as the API's own message, and the session is unchanged.
    broken = os.path.join(work, "broken.torrent")
    with open(broken, "wb") as f:
        f.write(b"d8:announce3:url4:infod4:name")
    find(driver, "#add-file").send_keys(broken)
    find(driver, "#add-submit").click()
    wait_for(driver, "the API's error", lambda d: "not a valid .torrent" in (text_of(d, "#error") or ""))
    listed = api_get(rpc, "/api/torrents")
    if [t["id"] for t in listed] != [info_hash]:
        raise CaseFailed(f"after a broken upload the session lists {[t['id'] for t in listed]}")

    # Without a kept token the page asks for one; a wrong one is refused, the right one works.
    driver.execute_script("localStorage.clear()")
    driver.get(f"http://{rpc}/")
    wait_for(driver, "the token field", lambda d: find(d, "#token-form").is_displayed())
    enter_token(driver, "wrong-token")
    wait_for(driver, "the token refused", lambda d: "refused the token" in (text_of(d, "#error") or ""))
    enter_token(driver, TOKEN)
    wait_for(driver, "the list after entering the token", lambda d: find(d, row) and find(d, row).is_displayed())

    # Removing, with its files: the page asks first, then the list, the API and the disk agree.
    find(driver, f"{row} [data-testid=torrent-remove]").click()
    wait_for(driver, "the remove dialog", lambda d: find(d, "#remove-dialog").is_displayed())
    if text_of(driver, "#remove-name") != "web-test":
        raise CaseFailed(f"the remove dialog names {text_of(driver, '#remove-name')!r}")
    find(driver, "#remove-delete-data").click()
    find(driver, "#remove-confirm").click()
    wait_for(driver, "the empty list after removing", lambda d: find(d, row) is None and find(d, "#empty").is_displayed())
    if api_get(rpc, "/api/torrents") != []:
        raise CaseFailed(f"after removing, the API lists {api_get(rpc, '/api/torrents')}")
    # The files go once the torrent's threads have stopped, a moment after the call returns.
    content_left = os.path.join(leech_dir, "web-test")
    until = deadline(UI_SECS)
    while left := [os.path.join(dp, f) for dp, _, fs in os.walk(content_left) for f in fs]:
        if time.monotonic() > until:
            raise CaseFailed(f"{UI_SECS} s after removing the torrent with its files, these are left: {left}")
        time.sleep(0.2)


def enter_token(driver, token):
    field = find(driver, "#token-input")
    field.clear()
    field.send_keys(token)
    find(driver, "#token-form button[type=submit]").click()


# Pixel columns of the pieces canvas whose colour is not the stylesheet's --done.
PIXELS_NOT_DONE = """
const canvas = document.getElementById("pieces");
const want = getComputedStyle(canvas).getPropertyValue("--done").trim();
const probe = document.createElement("canvas").getContext("2d");
probe.fillStyle = want;
probe.fillRect(0, 0, 1, 1);
const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
const row = canvas.getContext("2d").getImageData(0, 0, canvas.width, 1).data;
let bad = 0;
for (let i = 0; i < row.length; i += 4) {
  if (row[i] !== r || row[i + 1] !== g || row[i + 2] !== b) bad += 1;
}
return bad;
"""

# The page's own unit formatting, called in the page: (expression, expected value).
FORMATS = [
    ("formatBytes(1536)", "1.50 KiB"),
    ("formatBytes(5 * 1024 ** 3)", "5.00 GiB"),
    ("formatRate(0)", "–"),
    ("formatEta(3725)", "1h 02m"),
    ("formatEta(59)", "59s"),
    ("formatPercent(0.99999)", "99.9%"),
    ("formatPercent(1)", "100%"),
    ("parseRate('1.5M')", 1572864),
    ("parseRate(' 500k ')", 512000),
    ("parseRate('')", 0),
    ("(() => { try { parseRate('fast'); return 'accepted'; } catch (e) { return 'refused'; } })()", "refused"),
]


def check_formats(driver):
    for expr, want in FORMATS:
        got = driver.execute_script(f"return {expr};")
        if got != want:
            raise CaseFailed(f"in the page {expr} is {got!r}, want {want!r}")


def files_ticked(driver):
    return [b.is_selected() for b in find_all(driver, "#files input[type=checkbox]")]


def deadline(secs):
    return time.monotonic() + secs


if __name__ == "__main__":
    sys.exit(main())
