"""The real Replicate client against the fake Replicate server, one behaviour or fault at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from carstudio.errors import Failure, GenerationError
from carstudio.providers.models import MODELS, ImageModel, get_model
from carstudio.providers.replicate import ReplicateProvider
from carstudio.spec import CarSpec
from tests.batch_helpers import wait_until
from tests.fakes.replicate import FakeReplicate
from tests.waiting import Sleeps

SPEC = CarSpec(make="Toyota", model="Corolla", year=2024, aspect_ratio="16:9")
PROMPT = "A red 2024 Toyota Corolla, front three-quarter view"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps(longest=0.01)


@pytest.fixture
def client(fake_replicate: FakeReplicate, sleeps: Sleeps) -> Callable[..., ReplicateProvider]:
    made: list[ReplicateProvider] = []

    def build(**overrides: object) -> ReplicateProvider:
        options: dict[str, object] = {
            "token": fake_replicate.token,
            "base_url": fake_replicate.base_url,
            "model": get_model("google/imagen-3"),
            "negative_prompt": "text, watermark",
            "timeout": 2.0,
            "wait_seconds": 5,
            "poll_interval": 0.02,
            "sleep": sleeps,
        }
        provider = ReplicateProvider(**(options | overrides))  # type: ignore[arg-type]
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def generate(provider: ReplicateProvider, tmp_path: Path, deadline: float = 10.0) -> Path:
    prediction = provider.create(prompt=PROMPT, spec=SPEC)
    prediction = provider.wait(prediction, deadline=time.monotonic() + deadline)
    return provider.download(prediction, tmp_path / "car").path


def error_of(
    provider: ReplicateProvider, tmp_path: Path, deadline: float = 10.0
) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        generate(provider, tmp_path, deadline)
    return caught.value


# -- the ordinary path ------------------------------------------------------------------------


def test_creates_on_the_official_model_endpoint_with_wait_and_token(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    path = generate(client(), tmp_path)
    create = fake_replicate.requests[0]
    assert create.method == "POST"
    assert create.path == "/v1/models/google/imagen-3/predictions"
    assert create.authorized
    assert create.headers["prefer"] == "wait=5"
    assert set(create.body) == {"input"}
    assert create.body["input"] == {
        "prompt": PROMPT,
        "aspect_ratio": "16:9",
        "negative_prompt": "text, watermark",
        "safety_filter_level": "block_only_high",
    }
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert abs(width / height - 16 / 9) < 0.1
    assert path.name == "car.png"
    assert fake_replicate.creation_count() == 1


def test_an_unfinished_prediction_is_polled_until_it_succeeds(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.latency = 0.3
    provider = client(wait_seconds=0)  # no Prefer: wait, so the create answers at once
    first = provider.create(prompt=PROMPT, spec=SPEC)
    assert first.status == "starting" and first.output is None
    done = provider.wait(first, deadline=time.monotonic() + 5)
    assert done.output
    polls = [r for r in fake_replicate.requests if r.method == "GET" and first.id in r.path]
    assert polls, "the client should have polled"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_supported_model_gets_only_the_inputs_it_accepts(
    client, fake_replicate: FakeReplicate, tmp_path: Path, name: str
) -> None:
    generate(client(model=get_model(name)), tmp_path)
    sent = fake_replicate.creations[0]
    assert set(sent) <= MODELS[name].inputs
    assert sent["aspect_ratio"] == "16:9", "sent even where the model has its own default"
    assert fake_replicate.requests[0].path == f"/v1/models/{name}/predictions"
    if "resolution" in MODELS[name].inputs:
        assert sent["resolution"] in {"1K", "2K"}


def test_base_url_with_v1_suffix_still_works(fake_replicate: FakeReplicate, make_settings) -> None:
    settings = make_settings(
        fake=fake_replicate, replicate_base_url=fake_replicate.base_url + "/v1/"
    )
    assert settings.replicate_base_url == fake_replicate.base_url


# -- refusals that are not retried ------------------------------------------------------------


def test_a_bad_token_is_a_clear_error_that_names_the_setting(
    client, fake_replicate: FakeReplicate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "r8_wrong_token_that_must_not_leak"
    error = error_of(client(token=secret), tmp_path)
    assert error.failure is Failure.UNAUTHENTICATED and error.fatal_for_batch
    assert "REPLICATE_API_TOKEN" in error.message
    assert secret not in error.message and secret not in caplog.text
    assert len(fake_replicate.requests) == 1


def test_out_of_credit_stops_at_once(client, fake_replicate: FakeReplicate, tmp_path: Path) -> None:
    fake_replicate.add_fault("insufficient_credit")
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.INSUFFICIENT_CREDIT and error.fatal_for_batch
    assert "credit" in error.message
    assert len(fake_replicate.requests) == 1


def test_a_retired_model_names_the_setting_and_its_replacement(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("model_gone")
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.MODEL_UNAVAILABLE
    assert "CARSTUDIO_MODEL" in error.message and "google/nano-banana-2" in error.message


def test_invalid_input_is_reported_with_the_field(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    wrong = ImageModel(
        "google/imagen-3", "x", frozenset({"prompt", "aspect_ratio", "output_format"})
    )
    error = error_of(client(model=wrong), tmp_path)
    assert error.failure is Failure.INVALID_INPUT
    assert "output_format" in error.message


def test_a_safety_refusal_says_so_and_is_not_retried(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("safety")
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.SAFETY and not error.retryable
    assert "safety filter" in error.message and "E005" in error.message
    assert error.prediction_id
    assert fake_replicate.creation_count() == 1


def test_a_model_failure_keeps_its_reason(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("failed", message="CUDA out of memory")
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.MODEL_FAILED
    assert "CUDA out of memory" in error.message


@pytest.mark.parametrize("kind", ["canceled", "aborted"])
def test_canceled_and_aborted_predictions_end_cleanly(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.add_fault(kind)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.PREDICTION_CANCELED
    assert ("aborted" in error.message) == (kind == "aborted")


def test_a_prediction_past_its_deadline_is_cancelled_at_replicate(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("never_finishes")
    error = error_of(client(wait_seconds=0), tmp_path, deadline=0.3)
    assert error.failure is Failure.DEADLINE
    cancels = [r for r in fake_replicate.requests if r.path.endswith("/cancel")]
    assert len(cancels) == 1
    assert fake_replicate.predictions[error.prediction_id]["status"] == "canceled"


# -- transient faults: retried once ---------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "server_error_500",
        "server_error_502",
        "server_error_503",
        "server_error_504",
        "non_json_5xx",
    ],
)
def test_a_server_error_on_create_is_retried_once(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.add_fault(kind)
    generate(client(), tmp_path)
    assert fake_replicate.creation_count() == 1


@pytest.mark.parametrize("kind", ["server_error_503", "non_json_5xx"])
def test_two_server_errors_in_a_row_fail_with_a_sentence(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.add_fault(kind, times=2)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.TRANSIENT
    assert error.message.startswith("Replicate had a server error")
    assert fake_replicate.creation_count() == 0


def test_rate_limit_honours_retry_after(
    client, fake_replicate: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake_replicate.add_fault("rate_limit", retry_after=7)
    generate(client(), tmp_path)
    assert 7 in sleeps
    assert fake_replicate.creation_count() == 1


def test_rate_limit_without_retry_after_reads_the_hint(
    client, fake_replicate: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake_replicate.add_fault("rate_limit")  # "...resets in ~1s."
    generate(client(), tmp_path)
    assert 1.0 in sleeps


def test_rate_limited_twice_gives_up_with_words(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("rate_limit", retry_after=2, times=2)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.RATE_LIMITED
    assert "rate limiting" in error.message


def test_a_connection_reset_on_create_is_retried_and_creates_once(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("reset")
    generate(client(), tmp_path)
    assert fake_replicate.creation_count() == 1


def test_two_resets_in_a_row_fail_and_create_nothing(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("reset", times=2)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.TRANSIENT and error.retryable
    assert fake_replicate.creation_count() == 0


def test_a_stall_past_the_read_timeout_is_retried(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("stall", stall=3.0)
    started = time.monotonic()
    generate(client(timeout=0.3, wait_seconds=0), tmp_path)
    assert time.monotonic() - started < 3.0
    assert fake_replicate.creation_count() == 1


@pytest.mark.parametrize("kind", ["poll_500", "poll_reset"])
def test_a_failed_poll_is_retried(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.latency = 0.2
    fake_replicate.add_fault(kind)
    provider = client(wait_seconds=0)
    prediction = provider.create(prompt=PROMPT, spec=SPEC)
    done = provider.wait(prediction, deadline=time.monotonic() + 5)
    assert done.output


# -- outputs -----------------------------------------------------------------------------------


def test_output_present_while_still_processing_counts_as_done(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("processing_with_output")
    provider = client()
    prediction = provider.create(prompt=PROMPT, spec=SPEC)
    assert prediction.status == "processing" and prediction.output
    ready = provider.wait(prediction, deadline=time.monotonic() + 5)
    assert provider.download(ready, tmp_path / "car").path.exists()


def test_a_data_uri_output_is_decoded(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("data_uri")
    path = generate(client(), tmp_path)
    with Image.open(path) as image:
        assert image.format == "PNG"


@pytest.mark.parametrize("kind", ["output_404", "truncated", "not_image"])
def test_a_bad_download_is_retried_once(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.add_fault(kind)
    path = generate(client(), tmp_path)
    with Image.open(path) as image:
        image.verify()


@pytest.mark.parametrize(
    ("kind", "words"),
    [("output_404", "gone"), ("truncated", "interrupted"), ("not_image", "not a PNG")],
)
def test_a_bad_download_twice_fails_and_leaves_no_file(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str, words: str
) -> None:
    fake_replicate.add_fault(kind, times=2)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.BAD_OUTPUT and words in error.message
    assert error.prediction_id
    assert list(tmp_path.iterdir()) == []


# -- a create whose answer was lost ---------------------------------------------------------


def test_a_prediction_whose_create_answer_was_lost_can_be_found(
    client, fake_replicate: FakeReplicate
) -> None:
    provider = client(wait_seconds=0)
    since = time.time()
    made = provider.create(prompt=PROMPT, spec=SPEC)
    found = provider.find_created(prompt=PROMPT, spec=SPEC, since=since - 5)
    assert found is not None and found.id == made.id
    assert (
        provider.find_created(
            prompt=PROMPT, spec=SPEC, since=since - 5, exclude=frozenset({made.id})
        )
        is None
    )
    other = CarSpec(make="Kia", aspect_ratio="16:9")
    assert provider.find_created(prompt="another car", spec=other, since=since - 5) is None


# -- never paid twice, never leaked --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["created_then_502", "created_then_504"])
def test_a_5xx_after_the_prediction_was_made_is_found_not_paid_again(
    client, fake_replicate: FakeReplicate, tmp_path: Path, kind: str
) -> None:
    fake_replicate.add_fault(kind)
    generate(client(), tmp_path)
    assert fake_replicate.creation_count() == 1
    lookups = [
        r for r in fake_replicate.requests if r.method == "GET" and r.path == "/v1/predictions"
    ]
    assert len(lookups) == 1 and "created_after=" in lookups[0].query


def test_a_throttled_lookup_is_asked_again_not_taken_for_not_found(
    client, fake_replicate: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake_replicate.add_fault("created_then_502")
    fake_replicate.add_fault("list_rate_limit", retry_after=3)
    fake_replicate.add_fault("list_500")
    generate(client(), tmp_path)
    assert fake_replicate.creation_count() == 1
    assert 3 in sleeps, "the lookup honoured Retry-After"


def test_a_lookup_that_keeps_failing_stops_without_creating_again(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.add_fault("created_then_504")
    fake_replicate.add_fault("list_500", times=10)
    error = error_of(client(), tmp_path)
    assert error.failure is Failure.TRANSIENT and "looked up again" in error.message
    assert fake_replicate.creation_count() == 1


def test_the_lookup_follows_pages_and_allows_for_clock_skew(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.page_size = 1
    provider = client()
    for n in range(3):  # newer predictions of other cars push ours to the fourth page
        provider.create(prompt=f"another car {n}", spec=SPEC)
    since = time.time() + 20  # our clock runs 20 s ahead of Replicate's
    made = provider.create(prompt=PROMPT, spec=SPEC)
    for n in range(3):
        provider.create(prompt=f"a later car {n}", spec=SPEC)
    found = provider.find_created(prompt=PROMPT, spec=SPEC, since=since)
    assert found is not None and found.id == made.id


def test_the_token_goes_to_the_api_and_not_to_the_file_host(sleeps: Sleeps, tmp_path: Path) -> None:
    with FakeReplicate(token="r8_secret_for_this_test", files_host="127.0.0.2") as fake:
        provider = ReplicateProvider(
            token=fake.token,
            base_url=fake.base_url,
            model=get_model("google/imagen-3"),
            wait_seconds=5,
            sleep=sleeps,
        )
        try:
            generate(provider, tmp_path)
        finally:
            provider.close()
        api = [r for r in fake.requests if r.path.startswith("/v1/")]
        files = [r for r in fake.requests if r.path.startswith("/files/")]
    assert api and all(r.authorized for r in api)
    assert files and files[0].headers["host"].startswith("127.0.0.2")
    assert all("authorization" not in r.headers for r in files)


def test_every_create_tells_replicate_its_deadline(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    provider = client()
    provider.create(prompt=PROMPT, spec=SPEC, deadline=time.monotonic() + 90.2)
    provider.create(prompt=PROMPT, spec=SPEC, deadline=time.monotonic() + 1)
    sent = [r.headers.get("cancel-after") for r in fake_replicate.requests if r.method == "POST"]
    assert sent == ["91s", "5s"]  # rounded up; never under Replicate's 5 s minimum
    with pytest.raises(GenerationError) as late:
        provider.create(prompt=PROMPT, spec=SPEC, deadline=time.monotonic() - 1)
    assert late.value.failure is Failure.DEADLINE
    assert fake_replicate.creation_count() == 2


def test_an_image_replicate_already_deleted_says_to_retry_the_row(
    client, fake_replicate: FakeReplicate, tmp_path: Path
) -> None:
    fake_replicate.retention = 0.2
    provider = client(wait_seconds=0)
    made = provider.create(prompt=PROMPT, spec=SPEC)
    wait_until(lambda: provider.get(made.id).data_removed, timeout=5)
    with pytest.raises(GenerationError) as caught:
        provider.wait(provider.get(made.id), deadline=time.monotonic() + 5)
    assert caught.value.failure is Failure.OUTPUT_REMOVED
    assert "an hour after it was made; retry the row" in caught.value.message
    assert caught.value.prediction_id == made.id
