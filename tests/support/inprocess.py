"""The app in this process, behind the same `requests` interface the loopback tests use: a
transport adapter hands each prepared request to Flask's test client. For API tests where a
real server adds nothing (no client binaries, no concurrency, no process deaths)."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import requests
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

BASE_URL = "http://localhost"


def _body(body) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return b"".join(body)  # a generator: what requests would send chunked


class FlaskAdapter(BaseAdapter):
    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request: requests.PreparedRequest, **_kwargs) -> requests.Response:
        url = urlsplit(request.url)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
        answer = self.client.open(
            url.path,
            method=request.method,
            query_string=url.query,
            headers=headers,
            data=_body(request.body),
        )
        resp = requests.Response()
        resp.status_code = answer.status_code
        resp.reason = answer.status.partition(" ")[2]
        # Repeated headers joined as urllib3 joins them; `raw.headers.getlist` keeps them apart.
        resp.headers = CaseInsensitiveDict(
            {k: ", ".join(answer.headers.getlist(k)) for k, _ in answer.headers}
        )
        resp.raw = SimpleNamespace(headers=answer.headers)
        resp._content = answer.get_data()
        resp.url, resp.request, resp.encoding = request.url, request, None
        answer.close()
        return resp

    def close(self) -> None:
        pass


def session_for(app: Flask, session: requests.Session) -> requests.Session:
    session.mount(BASE_URL, FlaskAdapter(app))
    return session
