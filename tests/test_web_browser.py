"""The clinic page in a real headless Chromium against a real ``pneumo serve`` (waitress).

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver);
Selenium is pointed at that driver so Selenium Manager downloads nothing. The
screenshots land in test-artifacts/ at the repository root.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "browser-test-token-0123456789"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from PIL import Image  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

from pneumo_edge.edge.classifier import Classifier, Options  # noqa: E402
from pneumo_edge.edge.heatmap import COLOURS, overlay, overlay_size  # noqa: E402


@pytest.fixture(scope="module")
def server():
    yield from serve()


def serve(*extra: str):
    """``pneumo serve`` on a free loopback port, with a token so the page's cookie path is used."""
    served = ServeProcess("--token", TOKEN, *extra)
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,1400",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


DROP = """
const [b64, name, type] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, {type: type}));
document.getElementById("dropzone").dispatchEvent(
    new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
"""


def wait_for_result(driver, name: str):
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "filename").text == name
                                    and d.find_element(By.ID, "label").text)
    WebDriverWait(driver, 30).until(lambda d: "drawn here in" in d.find_element(By.ID, "heatmap-caption").text)


# The overlay canvas as the page drew it: its size, how many pixels are not transparent, and a PNG of it.
CANVAS = """
const canvas = document.getElementById("heatmap");
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let opaque = 0;
for (let i = 3; i < data.length; i += 4) opaque += data[i] > 0;
return {width: canvas.width, height: canvas.height, opaque: opaque, png: canvas.toDataURL("image/png")};
"""


def canvas_pixels(driver) -> tuple[dict, np.ndarray]:
    drawn = driver.execute_script(CANVAS)
    with Image.open(io.BytesIO(base64.b64decode(drawn["png"].split(",", 1)[1]))) as image:
        return drawn, np.asarray(image.convert("RGB"), dtype=np.int16)


def assert_overlay_drawn(driver, expected, film_size: tuple[int, int]) -> None:
    """The canvas holds the film with the colour map blended in, as the device's own overlay of it."""
    assert expected.cam.max() > 0  # a map with something to show (a pneumonia film's)
    drawn, pixels = canvas_pixels(driver)
    assert (drawn["width"], drawn["height"]) == overlay_size(film_size)  # the film's aspect ratio
    assert drawn["opaque"] == drawn["width"] * drawn["height"]
    device = np.asarray(overlay(expected.film.image, expected.cam), dtype=np.int16)
    assert np.abs(pixels - device).mean() < 3  # the browser's decoder and scaling differ a little
    coloured = pixels[np.ptp(pixels, axis=-1) > 40]  # where the map shows: no longer grey
    assert len(coloured) > 0.02 * drawn["width"] * drawn["height"]
    hottest = pixels.reshape(-1, 3)[np.argmax(np.ptp(pixels, axis=-1))]
    palette = COLOURS.astype(np.int16)
    assert np.abs(palette - hottest).sum(axis=1).min() < 200  # a colour of the map, not some other tint


def assert_canvas_cleared(driver) -> None:
    assert driver.execute_script(CANVAS)["opaque"] == 0


def child_png(train_dir, size: tuple[int, int]) -> bytes:
    """A child's pneumonia film (in the shipped model's scope) as a PNG of ``size``, not square."""
    buffer = io.BytesIO()
    Image.open(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[1]).convert("L").resize(size).save(buffer, "PNG")
    return buffer.getvalue()


def test_page_scores_a_chosen_and_a_dropped_film(server, browser, train_dir, fullres_dir):
    reference = Classifier(Options())
    browser.get(f"{server}/?token={TOKEN}")
    assert browser.current_url == f"{server}/"  # the token left the address bar for a cookie
    assert browser.find_element(By.ID, "intended-use").text.endswith(reference.describe()["intended_use"])
    assert reference.id in browser.find_element(By.ID, "model").text
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert not browser.find_element(By.ID, "capture").is_displayed()  # no camera on this server

    chosen = train_dir / "PNEUMONIA" / sorted(p.name for p in (train_dir / "PNEUMONIA").glob("*.jpeg"))[0]
    browser.find_element(By.ID, "file").send_keys(str(chosen))
    wait_for_result(browser, chosen.name)
    expected = reference.predict(chosen)
    assert browser.find_element(By.ID, "label").text == expected.label
    assert browser.find_element(By.ID, "probability").text == f"{expected.probability:.3f}"
    assert browser.find_element(By.ID, "threshold").text == f"{expected.threshold:.3f}"
    fill = browser.execute_script("return document.getElementById('bar-fill').style.width")
    assert float(fill.rstrip("%")) == pytest.approx(100 * expected.probability, abs=0.051)
    assert_overlay_drawn(browser, expected, (224, 224))
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".legend-words span")] == [
        "none", "evidence of pneumonia", "strongest"]
    assert "ms on the device" in browser.find_element(By.ID, "time").text

    wide = child_png(train_dir, (640, 480))
    browser.execute_script(DROP, base64.b64encode(wide).decode(), "wide.png", "image/png")
    wait_for_result(browser, "wide.png")
    expected = reference.predict(wide)
    assert browser.find_element(By.ID, "label").text == expected.label
    assert_overlay_drawn(browser, expected, (640, 480))
    recent = browser.find_elements(By.CSS_SELECTOR, "#recent li")
    assert len(recent) == 2 and "wide.png" in recent[0].text and chosen.name in recent[1].text
    assert all(li.find_element(By.TAG_NAME, "img").get_attribute("src").startswith("data:image/jpeg")
               for li in recent)

    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web_page.png"))

    browser.execute_script(DROP, base64.b64encode(b"not a film").decode(), "notes.png", "image/png")
    WebDriverWait(browser, 30).until(lambda d: "not scored (415)" in d.find_element(By.ID, "status").text)
    assert_canvas_cleared(browser)

    adult = sorted(fullres_dir.glob("*.png"))[0]  # out of the shipped model's scope: refused with 422
    browser.execute_script(DROP, base64.b64encode(adult.read_bytes()).decode(), adult.name, "image/png")
    WebDriverWait(browser, 30).until(lambda d: "not scored (422)" in d.find_element(By.ID, "status").text)
    assert_canvas_cleared(browser)

    origin = server
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert resources and all(name.startswith(origin) for name in resources), resources
    problems = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
                and "415" not in entry["message"] and "422" not in entry["message"]]  # refused uploads above
    assert problems == []  # no script errors, no Content-Security-Policy violations


def open_and_score(driver, server: str, film: Path, window: tuple[int, int]) -> None:
    """Open the page at a window size and score a film chosen with the file input."""
    driver.set_window_size(*window)
    driver.get(f"{server}/?token={TOKEN}")
    driver.find_element(By.ID, "file").send_keys(str(film))
    wait_for_result(driver, film.name)


def test_page_fits_a_phone(server, browser, train_dir):
    open_and_score(browser, server, sorted((train_dir / "NORMAL").glob("*.jpeg"))[0], (390, 844))
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0  # nothing wider than the phone's screen
    assert browser.find_element(By.ID, "heatmap").size["width"] <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web_page_phone.png"))


# Drop a file and, in the same task (before the request can answer), read what the page shows.
DROP_AND_LOOK = DROP + """
return {resultHidden: document.getElementById("result").hidden,
        label: document.getElementById("label").textContent,
        status: document.getElementById("status").textContent,
        working: document.getElementById("status").classList.contains("working")};
"""


def test_a_new_film_clears_the_old_answer_and_an_error_replaces_it(server, browser, train_dir):
    """The stale-answer bug: a refused film showed its error above the previous film's result."""
    flagged = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[0]
    open_and_score(browser, server, flagged, (1200, 1400))
    assert browser.find_element(By.ID, "result").is_displayed()

    rng = np.random.default_rng(0)
    colour = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), "RGB").save(colour, "PNG")
    seen = browser.execute_script(DROP_AND_LOOK, base64.b64encode(colour.getvalue()).decode(), "photo.png",
                                  "image/png")
    assert seen["resultHidden"] and seen["label"] == "" and seen["working"]  # cleared at once
    assert seen["status"] == "Scoring photo.png…"
    WebDriverWait(browser, 30).until(lambda d: "(422)" in d.find_element(By.ID, "status").text)
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("photo.png was not scored (422): looks like a colour photograph"), status
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert browser.find_element(By.ID, "label").text == ""

    # Scored again, then refused by the browser itself (over the size limit): the same rule.
    browser.find_element(By.ID, "file").send_keys(str(flagged))
    wait_for_result(browser, flagged.name)
    assert browser.find_element(By.ID, "status").text == ""
    limit = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-max-upload-bytes"))
    browser.execute_script(
        "const transfer = new DataTransfer();"
        "transfer.items.add(new File([new Uint8Array(arguments[0])], 'huge.dcm'));"
        "document.getElementById('dropzone').dispatchEvent("
        "new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));", limit + 1)
    assert "huge.dcm is" in browser.find_element(By.ID, "status").text
    assert not browser.find_element(By.ID, "result").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web_page_refused.png"))


@pytest.fixture(scope="module")
def scope_server(scope_model):
    yield from serve("--model", str(scope_model[0]))


def test_an_out_of_scope_film_is_refused_with_its_reason_and_no_earlier_result(scope_server, browser,
                                                                                 scope_model, tmp_path):
    from pneumo_edge.edge.scope import REASONS

    reference = Classifier(Options(model=scope_model[0], allow_out_of_scope=True))
    film = next(f.path for f in scope_model[1]["val"] if reference.predict(f.path).scope.in_scope)
    negative = tmp_path / "negative.png"
    Image.fromarray(255 - np.asarray(Image.open(film).convert("L"))).save(negative)
    browser.set_window_size(1200, 1400)
    browser.get(f"{scope_server}/?token={TOKEN}")
    browser.find_element(By.ID, "file").send_keys(str(film))
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "result").is_displayed()
                                     and d.find_element(By.ID, "filename").text == film.name)
    assert browser.find_element(By.ID, "label").text == reference.predict(film).label

    browser.find_element(By.ID, "file").send_keys(str(negative))
    WebDriverWait(browser, 60).until(lambda d: "was not scored (422)" in d.find_element(By.ID, "status").text)
    status = browser.find_element(By.ID, "status")
    assert status.text.startswith("negative.png was not scored (422): out of scope: " + REASONS["inverted"])
    assert "error" in status.get_attribute("class")
    assert not browser.find_element(By.ID, "result").is_displayed()  # the earlier film's answer is gone
    assert browser.find_element(By.ID, "label").text == ""
    assert_canvas_cleared(browser)  # and its heatmap
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web_page_out_of_scope.png"))


def test_a_dicom_film_is_drawn_on_the_grey_film_the_device_sends(server, browser, train_dir):
    pytest.importorskip("pydicom")
    from dicom_files import make_dicom

    reference = Classifier(Options())
    grey = np.asarray(Image.open(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[2]).convert("L").resize((400, 300)))
    dicom = make_dicom(grey.astype(np.uint16) * 16, BitsAllocated=16, BitsStored=12, HighBit=11,
                       PixelRepresentation=0)
    browser.set_window_size(1200, 1400)
    browser.get(f"{server}/?token={TOKEN}")
    browser.execute_script(DROP, base64.b64encode(dicom).decode(), "film.dcm", "application/dicom")
    wait_for_result(browser, "film.dcm")  # the browser cannot decode DICOM: it draws on the device's grey film
    expected = reference.predict(dicom)
    assert browser.find_element(By.ID, "label").text == expected.label
    assert_overlay_drawn(browser, expected, (400, 300))
