"""Answers from a local ``transformers`` image-text-to-text model (Qwen2-VL, Qwen2.5-VL, SmolVLM).

The model sees the top page images / figure crops (at most ``max_images``, each captioned with
its marker) and the numbered evidence text, with the citation prompt of
:mod:`generators.base`. Tokens stream through ``TextIteratorStreamer`` to ``on_token``; the
final text goes through :func:`generators.markers.cited_answer` with ``check=True``: invalid
markers are removed and the rest are checked against their evidence (:mod:`generators.grounding`).
``on_token`` receives the raw text; the returned Answer is the checked one.

The family is data: ``config.json``'s ``architectures`` (then ``model_type``) is looked up in
``generators.registry.ARCHITECTURES`` / ``MODEL_TYPES``, or given explicitly with ``family=``;
:func:`local_vlm_generator` (the ``local`` generator) also takes a registered name
(``smolvlm-256m``...). Three steps
are separate methods: :meth:`LocalVLMGenerator.prepare_inputs` (messages -> tensors),
generation (:meth:`stream`), and citation parsing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, GeneratorError, MissingDependencyError, ModelError
from rag.lazy import require
from rag.types import Answer, Hit

from generators.base import (
    SYSTEM_PROMPT,
    ContextItem,
    Stopwatch,
    TokenCallback,
    build_context,
    build_prompt,
    image_caption,
    select_images,
)
from generators.markers import cited_answer
from generators.registry import ARCHITECTURES, MODEL_TYPES, find

__all__ = ["VLMFamily", "VLM_FAMILIES", "LocalVLMGenerator", "local_vlm_generator", "resolve_family"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VLMFamily:
    """How one model family is loaded and fed.

    ``model_class`` is the ``transformers`` class name; ``nested_images`` says the processor
    takes images as one list per prompt (Idefics3/SmolVLM) rather than a flat list (Qwen).
    """

    family: str
    model_class: str
    nested_images: bool = False


#: family (a row of ``generators.registry.FAMILIES``) -> how it loads and is fed
VLM_FAMILIES: dict[str, VLMFamily] = {
    f.family: f
    for f in (
        VLMFamily("qwen2-vl", "Qwen2VLForConditionalGeneration"),
        VLMFamily("qwen2.5-vl", "Qwen2_5_VLForConditionalGeneration"),
        VLMFamily("idefics3", "Idefics3ForConditionalGeneration", nested_images=True),
        VLMFamily("smolvlm", "SmolVLMForConditionalGeneration", nested_images=True),
    )
}

_DTYPES = (None, "auto", "float32", "float16", "bfloat16")


def resolve_family(config: dict[str, Any], where: str) -> VLMFamily:
    """The family of a model from its config dict; :class:`ModelError` when unsupported."""
    for arch in config.get("architectures") or []:
        if arch in ARCHITECTURES:
            return VLM_FAMILIES[ARCHITECTURES[arch]]
    model_type = config.get("model_type")
    if model_type in MODEL_TYPES:
        return VLM_FAMILIES[MODEL_TYPES[model_type]]
    raise ModelError(
        f"{where}: architectures {config.get('architectures')} / model_type {model_type!r} is not a supported "
        f"image-text-to-text model; supported architectures: {', '.join(ARCHITECTURES)} "
        f"(or pass family= one of {', '.join(VLM_FAMILIES)})"
    )


def _imports() -> tuple[Any, Any]:
    torch = require("torch", "vision", "local VLM generation")
    transformers = require("transformers", "vision", "local VLM generation")
    return torch, transformers


def _load_image(path: Path, max_side: int | None):
    from PIL import Image

    with Image.open(path) as src:
        image = src.convert("RGB")
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image


class LocalVLMGenerator:
    """A local image-text-to-text model as a generator. Construct cheaply; :meth:`load` loads weights."""

    def __init__(
        self,
        model: str,
        *,
        family: str | None = None,
        device: str = "cpu",
        max_new_tokens: int = 256,
        max_images: int = 3,
        max_items: int = 8,
        max_image_side: int | None = 1024,
        dtype: str | None = None,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if family is not None and family not in VLM_FAMILIES:
            raise ConfigError(f"unknown VLM family {family!r}; known: {', '.join(VLM_FAMILIES)}")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if max_images < 0:
            raise ConfigError(f"max_images must be >= 0, got {max_images}")
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        self.model_id = str(model)
        self.family = VLM_FAMILIES[family] if family is not None else None
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.max_images = max_images
        self.max_items = max_items
        self.max_image_side = max_image_side
        self.dtype = dtype
        self.generation_kwargs = {} if generation_kwargs is None else dict(generation_kwargs)
        self.name = f"local:{Path(self.model_id).name or self.model_id}"
        self.model: Any = None
        self.processor: Any = None

    # -- loading ---------------------------------------------------------------------------

    def _resolve_family(self, transformers: Any) -> VLMFamily:
        if self.family is not None:
            return self.family
        config_file = Path(self.model_id).expanduser() / "config.json"
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelError(f"{config_file}: unreadable model config: {exc}") from exc
        else:
            try:
                config = transformers.AutoConfig.from_pretrained(self.model_id).to_dict()
            except Exception as exc:  # noqa: BLE001 - hub/file errors of many kinds
                raise ModelError(f"cannot read the config of model {self.model_id!r}: {exc}") from exc
        return resolve_family(config, self.model_id)

    def load(self) -> LocalVLMGenerator:
        """Load processor and weights (idempotent)."""
        if self.model is not None:
            return self
        torch, transformers = _imports()
        family = self._resolve_family(transformers)
        model_cls = getattr(transformers, family.model_class, None)
        if model_cls is None:
            raise MissingDependencyError("transformers", extra="vision", purpose=f"{family.model_class} (upgrade it)")
        watch = Stopwatch()
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(self.model_id)
            options: dict[str, Any] = {}
            if self.dtype is not None:
                options["dtype"] = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
            model = model_cls.from_pretrained(self.model_id, **options)
        except ImportError as exc:  # raised inside from_pretrained (e.g. SmolVLM's processor needs num2words)
            raise MissingDependencyError(exc.name or str(exc), extra="vision", purpose=f"{family.family} models") from exc
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load {family.family} model {self.model_id!r}: {exc}") from exc
        self.model = model.to(self.device).eval()
        self.family = family
        watch.lap("load")
        logger.info("loaded %s model %s on %s in %.2fs", family.family, self.model_id, self.device, watch.timings["load"])
        return self

    # -- inputs ----------------------------------------------------------------------------

    def build_messages(
        self, question: str, items: Sequence[ContextItem], shown: Sequence[ContextItem] | None = None
    ) -> tuple[list[dict], list[ContextItem]]:
        """Chat messages (system + user with images and evidence) and the items whose image is shown.

        ``shown`` defaults to :func:`generators.base.select_images` with ``max_images``.
        """
        shown = select_images(items, self.max_images) if shown is None else list(shown)
        content: list[dict[str, Any]] = []
        for item in shown:
            content.append({"type": "text", "text": image_caption(item) + "\n"})
            content.append({"type": "image"})
        content.append({"type": "text", "text": build_prompt(question, items)})
        messages = [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": content},
        ]
        return messages, list(shown)

    def _encode(self, messages: list[dict], images: list[Any]) -> Any:
        self.load()
        assert self.family is not None
        try:
            prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            batch_images: Any = None
            if images:
                batch_images = [images] if self.family.nested_images else images
            inputs = self.processor(text=[prompt], images=batch_images, return_tensors="pt")
        except (ValueError, TypeError, KeyError) as exc:
            raise GeneratorError(f"local model {self.model_id}: cannot build model inputs: {exc}") from exc
        return inputs.to(self.device)

    def prepare_inputs(self, question: str, items: Sequence[ContextItem]) -> Any:
        """The processor output (``input_ids``, ``pixel_values``...) the model is given.

        An image that cannot be read is left out with a warning (its text still goes in).
        """
        shown, images = [], []
        for item in select_images(items, self.max_images):
            try:
                images.append(_load_image(Path(item.visual), self.max_image_side))  # type: ignore[arg-type]
            except OSError as exc:
                logger.warning("cannot read image %s for [%d]: %s; left out", item.visual, item.marker, exc)
                continue
            shown.append(item)
        messages, _ = self.build_messages(question, items, shown)
        return self._encode(messages, images)

    # -- generation ------------------------------------------------------------------------

    def _run(self, inputs: Any) -> Iterator[str]:
        """Generate in a worker thread, yielding text as the streamer releases it.

        Closing the iterator early (a consumer that stops reading) stops generation at the
        next token instead of running to ``max_new_tokens``.
        """
        torch, transformers = _imports()
        streamer = transformers.TextIteratorStreamer(
            self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        stop = threading.Event()

        class _Stop(transformers.StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False, **self.generation_kwargs}
        kwargs["stopping_criteria"] = transformers.StoppingCriteriaList([*kwargs.get("stopping_criteria", []), _Stop()])
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, streamer=streamer, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, name="mmrag-vlm-generate", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            stop.set()
            thread.join()
        if failure:
            exc = failure[0]
            raise GeneratorError(f"local model {self.model_id}: generation failed: {type(exc).__name__}: {exc}") from exc

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str]:
        """The raw generated text in pieces, as the model produces it."""
        items = build_context(hits, max_items=self.max_items)
        yield from self._run(self.prepare_inputs(question, items))

    def generate(
        self, question: str, hits: Sequence[Hit], *, on_token: TokenCallback | None = None, phrases: Sequence[str] | None = None
    ) -> Answer:
        watch = Stopwatch()
        items = build_context(hits, max_items=self.max_items)
        inputs = self.prepare_inputs(question, items)
        watch.lap("prepare")
        raw = "".join(watch.iterate(self._run(inputs), on_token))
        watch.lap("generate")
        return cited_answer(self.name, question, raw, items, hits, watch.timings, check=True)

    def complete(self, prompt: str) -> str:
        """Plain completion of a text prompt (no images, no citation parsing)."""
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        return "".join(self._run(self._encode(messages, []))).strip()


def local_vlm_generator(model: str, *, family: str | None = None, **options: Any) -> LocalVLMGenerator:
    """The ``local`` generator: a registered name or hub id (``mmrag models``, e.g. ``smolvlm-256m``)
    loads its hub id with its family; any other hub id or folder loads as given. An explicit
    ``family`` wins over the registered one."""
    spec = find(model)
    if spec is not None:
        model = spec.hub_id if spec.hub_id is not None else spec.name
        family = spec.family if family is None else family
    return LocalVLMGenerator(model, family=family, **options)
