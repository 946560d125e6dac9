"""LLM answers cached on disk by the exact request, so a repeated replay is free.

The key is the sha256 of the URL and the JSON body the client would send, so
any change to prompt, model, params, context, tools (and a tool loop's earlier
rounds) or endpoint is a new entry, and
an unchanged request whose answer was kept never reaches the provider again. Entries live in a
folder per chat (``cache_folder``), so ``forget`` removes one chat's answers
and leaves the others'.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec

from pipeline import toolbox
from pipeline.config import LlmConfig, LoadedConfig
from pipeline.llm import BadRequest, ImageUrl, LlmClient, LlmResult, Prompt, build_request
from pipeline.media import MediaStore
from pipeline.tools.replay._files import cache_folder, replace_private

_decoder = msgspec.json.Decoder(LlmResult)


class CachedLlm:
    """``LlmClient`` behind a directory of answers keyed by request."""

    def __init__(
        self, client: LlmClient, llm: LlmConfig, directory: Path, images: ImageUrl | None = None
    ) -> None:
        self._client = client
        self._llm = llm
        self._dir = directory
        self._images = images

    def key(self, prompt: Prompt) -> str:
        """sha256 hex of ``url`` + newline + the exact body bytes."""
        try:
            url, body = build_request(
                self._llm.provider,
                self._llm.base_url,
                prompt.model,
                prompt.messages,
                prompt.params,
                images=self._images,
                tools=toolbox.specs(prompt.tools),
                rounds=prompt.rounds,
            )
        except (ValueError, OSError) as exc:  # OSError: an image's file is gone
            raise BadRequest(f"cannot build LLM request: {exc}") from None
        return hashlib.sha256(url.encode() + b"\n" + msgspec.json.encode(body)).hexdigest()

    async def complete(
        self, prompt: Prompt, chat: str, *, keep: Callable[[LlmResult], bool] = lambda _: True
    ) -> tuple[LlmResult, bool]:
        """The answer to ``prompt`` (about ``chat``) and whether it came from the cache;
        raises ``LlmError``. Only an answer ``keep`` accepts is cached (a judge's
        unreadable answer is not: the next run asks again)."""
        name = f"{self.key(prompt)}.json"
        path = self._dir / cache_folder(chat) / name
        for found in (path, self._dir / name):  # the second: written by an older version
            try:
                return _decoder.decode(found.read_bytes()), True
            except (OSError, msgspec.DecodeError):
                pass  # not cached yet, or a torn file from a killed run: ask again
        result = await self._client.complete(
            prompt.model,
            prompt.messages,
            prompt.params,
            tools=toolbox.specs(prompt.tools),
            rounds=prompt.rounds,
        )
        if keep(result):
            replace_private(path, msgspec.json.encode(result))
        return result, False


@contextlib.asynccontextmanager
async def cached_llm(loaded: LoadedConfig, store: Path) -> AsyncIterator[CachedLlm]:
    """The endpoint and key of ``loaded`` behind the cache in ``STORE/replays/cache``;
    a turn's images are read from the store's media, as the daemon sent them."""
    llm = loaded.config.llm
    images = MediaStore.of(store).data_url
    async with LlmClient(
        provider=llm.provider,
        base_url=llm.base_url,
        api_key=loaded.secrets.api_key,
        timeout=llm.timeout_seconds,
        max_retries=llm.max_retries,
        images=images,
    ) as client:
        yield CachedLlm(client, llm, store / "replays" / "cache", images)
