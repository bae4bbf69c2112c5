"""A load generator for a live service: reader threads that keep every answer."""

from __future__ import annotations

import threading

import httpx


class Load:
    """Reader threads asking for recommendations until stopped; every answer is kept."""

    def __init__(
        self, base_url: str, users: list[str], *, headers: dict[str, str], threads: int = 3
    ) -> None:
        self.base_url, self.users, self.headers = base_url, users, headers
        self.stop = threading.Event()
        self.answers: list[tuple[str, int, str | None, dict | None]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.ask, args=(n,)) for n in range(threads)]

    def ask(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60, headers=self.headers) as client:
            count = n
            while not self.stop.is_set():
                user = self.users[count % len(self.users)]
                count += 1
                try:
                    answer = client.get(f"/v1/users/{user}/recommendations?k=5")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{user}: {type(exc).__name__}: {exc}")
                    continue
                body = answer.json() if answer.status_code == 200 else None
                header = answer.headers.get("X-Model-Version")
                self.answers.append((user, answer.status_code, header, body))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
