"""A small client for agent services: submit, poll, download."""

from __future__ import annotations

import time

import httpx

from voicefarm.schemas import JobOut

FINAL = ("succeeded", "failed")


class FarmError(Exception):
    """The API refused a request; `message` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=timeout,
                                 follow_redirects=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        response = self.http.request(method, url, **kwargs)
        if response.is_error:
            try:
                message = response.json()["error"]
            except Exception:
                message = response.text
            raise FarmError(response.status_code, message)
        return response

    def submit(self, text: str, **options: object) -> JobOut:
        """Queue a job (or get the cached audio's record at once); see POST /v1/jobs."""
        body = {"text": text, **{k: v for k, v in options.items() if v is not None}}
        return JobOut.model_validate(self._call("POST", "/v1/jobs", json=body).json())

    def get(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._call("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job: JobOut, *, timeout: float = 300.0) -> JobOut:
        """Poll until the job is final, backing off from 50 ms to 1 s between polls."""
        deadline, delay = time.monotonic() + timeout, 0.05
        while job.status not in FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.id} still {job.status} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
            job = self.get(job.id)
        return job

    def download(self, job: JobOut) -> bytes:
        if job.status != "succeeded" or job.audio_url is None:
            raise FarmError(409, f"job {job.id} is {job.status}: {job.error or 'no audio yet'}")
        return self._call("GET", job.audio_url).content

    def synthesize(self, text: str, **options: object) -> bytes:
        """Submit, wait, and return the audio bytes."""
        return self.download(self.wait(self.submit(text, **options)))
