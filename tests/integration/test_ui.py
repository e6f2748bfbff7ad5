"""``tritonclf ui`` against the real server: its API, then the page in a real headless Chromium.

The browser tests drive Debian's Chromium through chromedriver (tests/browser.py); they upload
through the page's own file input, as a user does, and read what the page renders.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tritonclf.preprocess import DecodeLimits
from tritonclf.samples import EXPECTED_TOP1, sample_photo, sample_photos
from tritonclf.serving.process import TritonProcess, free_port
from tritonclf_lab.bad_images import BAD_INPUTS

from ..browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium, full_page_png, ui_page

pytestmark = pytest.mark.integration
needs_browser = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason=MISSING)
MODEL = "efficientnet_lite0"
# Between the sample photos' sizes: chelsea.jpg (35 KB) passes, coffee.jpg (72 KB) does not.
TIGHT_BYTES = 60_000
BROKEN = next(bad for bad in BAD_INPUTS if bad.name == "truncated-jpeg")
# Drops a file, then pastes one, with the bytes given in base64: the events a browser fires.
DROP_AND_PASTE = """
const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
const carrying = (name) => {
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/jpeg" }));
  return data;
};
document.dispatchEvent(new DragEvent("drop", { dataTransfer: carrying("dropped.jpg"), cancelable: true }));
setTimeout(() => document.dispatchEvent(
  new ClipboardEvent("paste", { clipboardData: carrying("pasted.jpg"), cancelable: true })), 100);
"""
WAIT_S = 120  # for answers on a loaded machine: a liveness bound, not a speed check


@pytest.fixture(scope="module")
def page(server) -> str:
    """``tritonclf ui`` for the session's server."""
    with ui_page("--url", server.http_url) as url:
        yield url


@pytest.fixture(scope="module")
def two_ensembles(export_dir, tmp_path_factory):
    """A server with two ensembles: ``loose`` (the default limits) and ``tight`` (TIGHT_BYTES per image)."""
    from tritonclf.repository.build import BuildOptions, build_repository

    repository = tmp_path_factory.mktemp("ui") / "model_repository"
    lean = {"preprocess_instances": 1, "classifier_instances": 1}
    build_repository(export_dir, repository, BuildOptions(name="loose", **lean))
    build_repository(
        export_dir, repository, BuildOptions(name="tight", limits=DecodeLimits(max_image_bytes=TIGHT_BYTES), **lean)
    )
    with TritonProcess(repository, log_path=repository.parent / "tritonserver.log") as process:
        yield process


@pytest.fixture(scope="module")
def two_page(two_ensembles) -> str:
    with ui_page("--url", two_ensembles.http_url) as url:
        yield url


def call(url: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of one request to the page's server."""
    request = urllib.request.Request(url + path, body, {"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def requests_seen(server, model: str) -> int:
    """Requests the model has answered, successful or failed, from Triton's statistics."""
    with urllib.request.urlopen(f"http://{server.http_url}/v2/models/{model}/stats", timeout=30) as response:
        stats = json.loads(response.read())["model_stats"][0]["inference_stats"]
    return int(stats["success"]["count"]) + int(stats["fail"]["count"])


def test_lists_the_ready_ensembles_with_the_limits_their_models_enforce(two_page, two_ensembles):
    status, answer = call(two_page, "api/models")
    assert status == 200
    assert answer == {
        "triton": two_ensembles.http_url,
        "models": [
            {"name": "loose", "versions": ["1"], "labels": 1000, "max_image_bytes": DecodeLimits().max_image_bytes},
            {"name": "tight", "versions": ["1"], "labels": 1000, "max_image_bytes": TIGHT_BYTES},
        ],
    }


def test_an_image_over_the_models_limit_is_refused_with_its_line_before_triton_sees_it(two_page, two_ensembles):
    coffee = sample_photo("coffee").read_bytes()
    before = requests_seen(two_ensembles, "tight")
    status, answer = call(two_page, "api/classify?model=tight", coffee)
    assert (status, answer["status"]) == (413, "INVALID_ARGUMENT")
    assert requests_seen(two_ensembles, "tight") == before
    # The model itself, sent the same bytes, refuses them with the same line.
    client = httpclient.InferenceServerClient(two_ensembles.http_url)
    try:
        tensor = httpclient.InferInput("image", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([coffee], dtype=np.object_).reshape(1, 1))
        with pytest.raises(InferenceServerException) as refused:
            client.infer("tight", [tensor])
    finally:
        client.close()
    assert refused.value.message() == f"in ensemble 'tight', {answer['error']}"
    assert answer["error"] == f"image is {len(coffee)} bytes, above the limit of {TIGHT_BYTES} bytes"
    # Within the other ensemble's limit the same photo is classified.
    status, answer = call(two_page, "api/classify?model=loose&top_k=2", coffee)
    assert status == 200 and answer["predictions"][0]["label"] == "espresso"


def test_a_body_over_the_limit_is_refused_from_its_length_alone(two_page):
    host, port = two_page.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", "/api/classify?model=tight")
        connection.putheader("Content-Length", str(TIGHT_BYTES + 1))
        connection.endheaders()  # no body follows: the answer must not wait for one
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"] == (
            f"image is {TIGHT_BYTES + 1} bytes, above the limit of {TIGHT_BYTES} bytes"
        )
    finally:
        connection.close()


def test_every_rejection_of_readmes_bad_input_table_comes_back_as_its_line(page):
    limit = DecodeLimits().max_image_bytes
    for bad in BAD_INPUTS:
        data = bad.make()
        if len(data) > limit:
            continue  # refused from its length (the test above); the table's row for it is that same line
        status, answer = call(page, f"api/classify?model={MODEL}", data)
        assert (status, answer) == (400, {"error": bad.message, "status": "INVALID_ARGUMENT"}), bad.name


def test_a_photo_gets_its_top_k_labels_and_triton_s_round_trip(page):
    status, answer = call(page, f"api/classify?model={MODEL}&top_k=3", sample_photo("coffee").read_bytes())
    assert status == 200 and answer["model"] == MODEL
    assert [p["index"] for p in answer["predictions"]][:1] == [967]
    assert len(answer["predictions"]) == 3 and answer["triton_ms"] > 0
    scores = [p["score"] for p in answer["predictions"]]
    assert scores == sorted(scores, reverse=True)


def wait_for_cards(browser, count: int, labels: int | None = None) -> list[dict]:
    """What ``count`` result cards show once each has an answer (``labels`` labels, or a refusal)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def answered(driver):
        cards = [card_texts(card) for card in driver.find_elements(By.CSS_SELECTOR, "#results .card")]
        done = all(
            c["state"] == "refused" or (c["state"] == "done" and labels in (None, len(c["labels"]))) for c in cards
        )
        return cards if len(cards) == count and done else False

    return WebDriverWait(browser, WAIT_S).until(answered)


def card_texts(card) -> dict:
    from selenium.webdriver.common.by import By

    return {
        "name": card.find_element(By.CSS_SELECTOR, ".name").text,
        "state": card.get_attribute("data-state"),
        "labels": [e.text for e in card.find_elements(By.CSS_SELECTOR, ".prediction .label")],
        "classes": [e.get_attribute("title") for e in card.find_elements(By.CSS_SELECTOR, ".prediction")],
        "meta": card.find_element(By.CSS_SELECTOR, ".meta").text,
        "error": card.find_element(By.CSS_SELECTOR, ".error").text,
    }


def upload(browser, paths: list[Path]) -> None:
    """Through the page's own file input, as the file chooser does."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))


def wait_for_text(browser, element_id: str, text: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    element = browser.find_element(By.ID, element_id)
    WebDriverWait(browser, WAIT_S).until(lambda _: text in element.text)
    return element.text


@needs_browser
def test_the_page_classifies_the_sample_photos_and_says_why_a_broken_file_is_refused(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(BROKEN.make())
    photos = sample_photos()
    with chromium() as browser:
        browser.get(page)
        info = wait_for_text(browser, "model-info", "labels")
        assert info == f"{MODEL} · version 1 · 1000 labels · images up to 32 MiB"
        assert browser.find_element(By.ID, "status").get_attribute("hidden") is not None
        upload(browser, [*photos, broken])
        cards = {c["name"]: c for c in wait_for_cards(browser, len(photos) + 1)}
        for name, classes in EXPECTED_TOP1.items():
            assert cards[name]["state"] == "done" and len(cards[name]["labels"]) == 5
            top1 = int(cards[name]["classes"][0].removeprefix("class ").split(",")[0])
            assert top1 in classes, cards[name]
        assert cards["chelsea.jpg"]["labels"][0] == "tabby, tabby cat"
        assert cards["coffee.jpg"]["labels"][0] == "espresso"
        assert " · Triton " in cards["coffee.jpg"]["meta"] and cards["coffee.jpg"]["meta"].endswith(" ms")
        assert (cards["broken.jpg"]["state"], cards["broken.jpg"]["error"]) == ("refused", BROKEN.message)
        assert cards["broken.jpg"]["labels"] == []
        (tmp_path / "ui.png").write_bytes(full_page_png(browser))

        # The keyboard alone: Tab reaches the controls in reading order; top-k 2 and Enter reclassifies.
        body = browser.find_element(By.TAG_NAME, "body")
        body.click()
        focused = []
        for _ in range(4):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            focused.append(browser.switch_to.active_element.get_attribute("id"))
        assert focused == ["model", "top-k", "choose", "clear"]
        top_k = browser.find_element(By.ID, "top-k")
        top_k.send_keys(Keys.CONTROL, "a")
        top_k.send_keys("2", Keys.ENTER)
        cards = wait_for_cards(browser, len(photos) + 1, labels=2)
        assert sorted(len(c["labels"]) for c in cards) == [0] + [2] * len(photos)

        # Dropped and pasted files: the events a browser fires, carrying chelsea.jpg's bytes.
        browser.execute_script(DROP_AND_PASTE, base64.b64encode(sample_photo("chelsea").read_bytes()).decode())
        cards = wait_for_cards(browser, len(photos) + 3, labels=2)
        assert [(c["name"], c["labels"][0]) for c in cards[-2:]] == [
            ("dropped.jpg", "tabby, tabby cat"),
            ("pasted.jpg", "tabby, tabby cat"),
        ]

        # A phone-sized window: nothing wider than the screen.
        browser.set_window_size(390, 844)
        widths = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1]
        (tmp_path / "ui-phone.png").write_bytes(full_page_png(browser))


@needs_browser
def test_the_model_selector_offers_the_ensembles_and_the_page_holds_each_to_its_limit(two_page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    photos = {p.name: p for p in sample_photos()}
    with chromium() as browser:
        browser.get(two_page)
        wait_for_text(browser, "model-info", "labels")
        select = Select(browser.find_element(By.ID, "model"))
        assert [o.text for o in select.options] == ["loose", "tight"]
        select.select_by_value("tight")
        assert (
            browser.find_element(By.ID, "model-info").text == "tight · version 1 · 1000 labels · images up to 58.6 KiB"
        )
        upload(browser, [photos["coffee.jpg"], photos["chelsea.jpg"]])
        coffee, chelsea = wait_for_cards(browser, 2)
        size = photos["coffee.jpg"].stat().st_size
        assert coffee["error"] == (
            f"not sent: {size} bytes, above the upload limit of {TIGHT_BYTES} bytes (tight accepts no more)"
        )
        assert chelsea["labels"][0] == "tabby, tabby cat"


@needs_browser
@pytest.mark.parametrize("trouble", ["triton-unreachable", "model-not-ready"])
def test_the_page_says_in_one_line_what_is_wrong_and_keeps_working(server, trouble, tmp_path):
    from selenium.webdriver.common.by import By

    dead = f"127.0.0.1:{free_port()}"
    args, line = {
        "triton-unreachable": (("--url", dead), f"cannot reach Triton over http at {dead}: "),
        "model-not-ready": (
            ("--url", server.http_url, "--model", "nope"),
            f"model 'nope' is not ready on {server.http_url} (unknown, or failed to load)",
        ),
    }[trouble]
    photo = tmp_path / "chelsea.jpg"
    shutil.copy(sample_photos()[0], photo)
    with chromium() as browser:
        with ui_page(*args) as url:
            browser.get(url)
            status = wait_for_text(browser, "status", line)
            assert "\n" not in status
            assert browser.find_element(By.TAG_NAME, "h1").text == "Try the model"
            upload(browser, [photo])
            (card,) = wait_for_cards(browser, 1)
            assert card["error"] == "not sent: no model to send it to (see the line above)"
        # The page's own server has stopped: the page says so instead of going blank.
        browser.find_element(By.ID, "clear").click()
        upload(browser, [photo])
        status = wait_for_text(browser, "status", "cannot reach this page's server")
        assert status == "cannot reach this page's server (tritonclf ui): is it still running?"
