"""The team admins' page (issue 20) in headless Chromium; run by .ci/page-test.sh.

Environment (set by .ci/page-test.sh): PAGE_TEST_BASE (the demo's http://host:port),
PAGE_TEST_EMAIL and PAGE_TEST_PASSWORD (the demo app's team admin), PAGE_TEST_OUT (where the
screenshots go). Exits non-zero, with the reason on stderr, on any deviation from the expected
flow; on a failure the browser's view is kept as failure.png and failure.html.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["PAGE_TEST_BASE"].rstrip("/")
EMAIL = os.environ["PAGE_TEST_EMAIL"]
PASSWORD = os.environ["PAGE_TEST_PASSWORD"]
OUT = os.environ["PAGE_TEST_OUT"]
PAGE = BASE + "/scim-admin/"
WAIT_SECONDS = 15


class Deviation(Exception):
    pass


def log(msg):
    print(f"[page-test] {msg}", file=sys.stderr, flush=True)


def http(method, path, body=None, token=None):
    """A real HTTP request outside the browser: (status, parsed JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def login():
    status, body = http("POST", "/api/login", {"email": EMAIL, "password": PASSWORD})
    if status != 200 or not isinstance(body, dict) or not body.get("session"):
        raise Deviation(f"POST /api/login as {EMAIL} answered {status} {body!r}, not a session")
    return body["session"]


def scim_status(key):
    status, _ = http("GET", "/scim/v2/Users", token=key)
    return status


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1100,900", "--lang=en-US"):
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager (which would download drivers) is not used.
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def main():
    session = login()
    log(f"signed in to the demo app as {EMAIL}")
    driver = browser()
    wait = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05)
    step = "start"

    def until(what, condition):
        try:
            return wait.until(condition)
        except TimeoutException:
            error = driver.find_element(By.ID, "error").text if driver.find_elements(By.ID, "error") else ""
            extra = f"; the page's #error says {error!r}" if error else ""
            raise Deviation(f"{step}: waited {WAIT_SECONDS} s for {what}{extra}") from None

    def shot(name):
        path = os.path.join(OUT, name)
        if not driver.save_screenshot(path):
            raise Deviation(f"{step}: could not save the screenshot {path}")
        log(f"screenshot {name}")

    def no_error():
        error = driver.find_element(By.ID, "error").text
        if error:
            raise Deviation(f"{step}: the page shows an error: {error!r}")

    def status_is(value):
        def check(d):
            team = d.find_element(By.ID, "team")
            status = d.find_element(By.ID, "status")
            return team.is_displayed() and status.text == value
        return check

    def key_rows():
        return driver.find_elements(By.CSS_SELECTOR, "#keys tbody tr")

    try:
        step = "open the page"
        driver.get(PAGE)
        until("the sign-in box (#session) after /me answers 401",
              EC.visibility_of_element_located((By.ID, "session")))

        step = "paste the session token and Continue"
        driver.find_element(By.ID, "session").send_keys(session)
        driver.find_element(By.ID, "use-session").click()
        until('SCIM status "disabled"', status_is("disabled"))
        until("the sign-in box to hide", EC.invisibility_of_element_located((By.ID, "signin")))
        no_error()
        if not driver.find_element(By.ID, "enable").is_displayed():
            raise Deviation(f"{step}: SCIM is disabled but the Enable button is not shown")
        if key_rows() and driver.find_element(By.ID, "keys").is_displayed():
            raise Deviation(f"{step}: keys listed before any was generated")
        shot("1-signed-in-disabled.png")

        step = "Enable"
        driver.find_element(By.ID, "enable").click()
        until('SCIM status "enabled"', status_is("enabled"))
        until("the Generate button", EC.visibility_of_element_located((By.ID, "generate")))
        no_error()
        shot("2-enabled.png")

        step = "Generate"
        label = f"page test {int(time.time())}"
        field = driver.find_element(By.ID, "label")
        field.clear()
        field.send_keys(label)
        driver.find_element(By.ID, "generate").click()
        until("the new key box (#new-key)", EC.visibility_of_element_located((By.ID, "new-key")))
        key = until("the new key in #new-key-value",
                    lambda d: d.find_element(By.ID, "new-key-value").text.strip() or False)
        no_error()
        rows = [r for r in key_rows() if r.find_elements(By.TAG_NAME, "td")
                and r.find_elements(By.TAG_NAME, "td")[0].text == label]
        if len(rows) != 1:
            raise Deviation(f"{step}: expected one row labelled {label!r}, found {len(rows)}")
        key_id = rows[0].find_element(By.CSS_SELECTOR, "button[data-key]").get_attribute("data-key")
        if key in rows[0].text:
            raise Deviation(f"{step}: the keys table shows the secret")
        shot("3-key-shown-once.png")
        log(f"generated key id {key_id} ({len(key)} characters)")
        got = scim_status(key)
        if got != 200:
            raise Deviation(f"{step}: GET /scim/v2/Users with the new key answered {got}, not 200")
        log("GET /scim/v2/Users with the new key: 200")

        step = "reload"
        driver.refresh()
        until('SCIM status "enabled" after the reload', status_is("enabled"))
        row_button = (By.CSS_SELECTOR, f'#keys button[data-key="{key_id}"]')
        until(f"the row of key {key_id} after the reload", EC.visibility_of_element_located(row_button))
        no_error()
        if driver.find_element(By.ID, "new-key").is_displayed():
            raise Deviation(f"{step}: the new key box is still shown after a reload")
        everything = driver.execute_script(
            "return [document.documentElement.outerHTML, document.body.innerText,"
            " ...Array.from(document.querySelectorAll('input'), i => i.value),"
            " JSON.stringify(Object.assign({}, sessionStorage)),"
            " JSON.stringify(Object.assign({}, localStorage))].join('\\n');")
        if key in driver.page_source or key in everything:
            raise Deviation(f"{step}: the key is shown again after a reload")
        shot("4-reloaded-key-not-shown.png")

        step = "Revoke"
        button = driver.find_element(*row_button)
        button.click()
        until(f"the row of key {key_id} to go",
              lambda d: not d.find_elements(*row_button))
        until("the page to settle on the refreshed list", status_is("enabled"))
        no_error()
        if any(r.find_elements(By.TAG_NAME, "td") and r.find_elements(By.TAG_NAME, "td")[0].text == label
               for r in key_rows()):
            raise Deviation(f"{step}: a row labelled {label!r} is still listed")
        shot("5-key-revoked.png")
        got = scim_status(key)
        if got != 401:
            raise Deviation(f"{step}: GET /scim/v2/Users with the revoked key answered {got}, not 401")
        log("GET /scim/v2/Users with the revoked key: 401")
        with open(os.path.join(OUT, "demo.log"), encoding="utf-8", errors="replace") as f:
            if key in f.read():
                raise Deviation("the gateway's log holds the generated key")
        log("the gateway's log does not hold the generated key")
    except Exception:
        try:
            driver.save_screenshot(os.path.join(OUT, "failure.png"))
            with open(os.path.join(OUT, "failure.html"), "w", encoding="utf-8") as f:
                f.write(driver.page_source)
        except Exception as e:  # the browser may be gone
            log(f"could not keep the browser's view: {e}")
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main()
    except Deviation as e:
        log(f"FAIL: {e}")
        sys.exit(1)
