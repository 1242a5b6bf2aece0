"""The browser app and the survey page in a real headless Chromium (Debian's chromium and
chromium-driver through Selenium) against a real `ferkit serve` on loopback."""
import os
import shutil
import sqlite3

import pytest
from conftest import FER, SHARED
from serving import running_server

from ferkit.cli import main

CHROMEDRIVER = shutil.which("chromedriver")
if CHROMEDRIVER is None and os.environ.get("CI"):
    raise RuntimeError("CI needs chromium and chromium-driver (.ci/run installs them)")
pytestmark = pytest.mark.skipif(
    CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1200,1600", "--disable-gpu",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        opts.add_argument(arg)
    chromium = shutil.which("chromium")
    if chromium:
        opts.binary_location = chromium
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = tmp_path_factory.mktemp("survey") / "survey.db"
    assert main(["survey", "create", "--faces", str(FER / "val"), "--n", "5", "--seed", "2",
                 "--out", str(db)]) == 0
    with running_server("--survey", str(db)) as url:
        yield url, db


def _wait(driver, cond, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(cond)


def test_upload_a_photo_shows_the_table_and_the_annotated_image(browser, site):
    from selenium.webdriver.common.by import By
    url, _ = site
    browser.get(url + "/")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    browser.find_element(By.ID, "file").send_keys(str(SHARED / "media" / "two_people.jpg"))
    browser.find_element(By.ID, "analyze-btn").click()
    rows = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results-table tr.face-row"))
    assert len(rows) == 2
    labels = [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows]
    assert all(lab in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
               for lab in labels)
    _wait(browser, lambda d: d.execute_script(
        "const i = document.getElementById('annotated'); return i.complete && i.naturalWidth > 0"))
    width = browser.execute_script("return document.getElementById('annotated').naturalWidth")
    assert width > 100
    assert "2 face(s) found" in browser.find_element(By.ID, "status").text


def test_a_bad_upload_shows_the_servers_error(browser, site, tmp_path):
    from selenium.webdriver.common.by import By
    url, _ = site
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    browser.get(url + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    browser.find_element(By.ID, "analyze-btn").click()
    _wait(browser, lambda d: "not a decodable image" in d.find_element(By.ID, "status").text)


def test_survey_three_answers_land_in_the_database_and_a_reload_resumes(browser, site):
    from selenium.webdriver.common.by import By
    url, db = site
    browser.get(url + "/survey")
    picked = []
    for i in range(3):
        _wait(browser, lambda d, n=i + 1: f"Face {n} of 5" in
              d.find_element(By.ID, "progress-text").text)
        face = browser.find_element(By.ID, "face").get_attribute("data-face-id")
        button = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "button.choice"))[i]  # noqa: B023
        picked.append((int(face), button.get_attribute("data-label")))
        button.click()
    _wait(browser, lambda d: "Face 4 of 5" in d.find_element(By.ID, "progress-text").text)
    browser.refresh()                                    # same participant after a reload
    _wait(browser, lambda d: "Face 4 of 5" in d.find_element(By.ID, "progress-text").text)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT face_id, answer FROM answers ORDER BY created").fetchall()
    assert rows == picked
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 1


def test_webcam_frames_go_to_the_server_and_come_back_labelled(browser, site):
    """Chromium's fake camera (a synthetic test pattern: no face in it) streams through
    getUserMedia; the page posts its frames and shows the round-trip rate."""
    from selenium.webdriver.common.by import By
    url, _ = site
    browser.get(url + "/")
    browser.find_element(By.ID, "tab-webcam").click()
    browser.find_element(By.ID, "cam-start").click()
    _wait(browser, lambda d: "frames/s" in d.find_element(By.ID, "cam-fps").text)
    assert browser.execute_script("return document.getElementById('cam').videoWidth") > 0
    browser.find_element(By.ID, "cam-stop").click()
    assert browser.find_element(By.ID, "cam-start").is_enabled()
