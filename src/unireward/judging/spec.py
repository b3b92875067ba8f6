"""The judge spec: everything that decides how a judge is run, resolved once into one value every path uses.

    spec = resolve_spec("src/unireward/sandbox/judge")                       # a judge folder, in process
    spec = resolve_spec("http://127.0.0.1:8000/v1", backend="openai", served_model="judge",
                        checkpoint="src/unireward/sandbox/judge")            # the same judge behind vLLM
    spec = resolve_spec("unifiedreward-edit-qwen35-9b", max_new_tokens=64)   # registry entry + an override

Resolution, lowest precedence first: unireward's defaults < the registry entry (a registered short name or hub
id, or the registered checkpoint a local folder is a copy of) < the folder's `unireward.json` < explicit
arguments (None means "not given"). On the OpenAI path the entry and folder come from `checkpoint=` (a short
name, hub id or judge folder) or else from `served_model` when that names a registered checkpoint.

The in-process judge, the OpenAI backend (its flattened options: chat template options, image encoding), SFT,
rejection sampling and GRPO training, construct, bench, serve and `unireward prompt` take their settings from
here; `render.py` turns (spec, request) into the chat input, and `method_for` is the one rule deciding how a
verdict is read. `sources` says where each field came from; `warnings` lists the fallbacks taken, and they are
copied onto every result the judge returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TaskError
from ..media import ImagePolicy, VideoPolicy
from ..models.registry import DEFAULT_FAMILY, SIDECAR, lookup
from ..tasks import Task, family_tasks, get_task, list_families

METHODS = ("auto", "probs", "generate")
THINK = "think+probs"  # the method recorded on results read after the judge's own reasoning
BACKENDS = ("hf", "openai", "vllm")  # transformers in process, an OpenAI-compatible server, vLLM in process
# what a judge folder's unireward.json may set
SIDECAR_FIELDS = ("family", "variant", "method", "reasoning", "max_new_tokens", "chat_template_kwargs")


@dataclass(frozen=True)
class JudgeSpec:
    """How a judge is run. Build it with `resolve_spec`; change a field with `dataclasses.replace`."""

    model: str = ""  # what is opened: a folder, a hub id, or base URL(s) of an OpenAI-compatible server
    backend: str = "hf"  # hf | openai | vllm
    served_model: str | None = None  # openai: the model name on the server
    checkpoint: str | None = None  # the registered checkpoint it runs (short name), None: none known
    family: str = DEFAULT_FAMILY  # whose prompts and answer formats: unireward, 1.0, 2.0, think, edit, flex
    variant: str | None = None  # the family's prompt variant (e.g. Think's "qwen2.5"); None: its default
    method: str = "auto"  # auto | probs | generate (see `method_for`)
    reasoning: bool | None = None  # writes reasoning before its verdict; None: as each task's format says
    max_new_tokens: int = 512  # generation budget (reasoning included)
    image_policy: ImagePolicy = field(default_factory=ImagePolicy)
    video_policy: VideoPolicy = field(default_factory=VideoPolicy)
    chat_template_kwargs: dict = field(default_factory=dict)  # e.g. Qwen3.5 judges: {"enable_thinking": False}
    image_format: str = "png"  # how images go in OpenAI requests: png (lossless) or jpeg (q95)
    allow_urls: bool = False  # media may be http(s) URLs
    sources: dict = field(default_factory=dict, compare=False)  # field -> default | registry | sidecar | argument
    warnings: tuple[str, ...] = field(default=(), compare=False)  # the fallbacks taken while resolving

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.family not in list_families():
            raise TaskError(f"unknown family {self.family!r}; known: {', '.join(list_families())}")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be png or jpeg, got {self.image_format!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")

    # -- what a request is rendered with ---------------------------------------------------------------------
    def task(self, task: str | Task, kind: str | None = None, dimensions: bool = False, template: str | None = None,
             variant: str | None = None) -> Task:
        """The task this judge renders for `task`: its family's prompt, the judge's variant where the task has
        it (else the family's default), refused when it is not a `kind` ("pair" / "point") task."""
        if variant is None and self.variant is not None and not isinstance(task, Task):
            if self.variant in family_tasks(self.family).get(str(task).partition("+")[0], []):
                variant = self.variant
        t = get_task(task, family=self.family, variant=variant, dimensions=dimensions, template=template)
        if kind is not None and t.kind != kind:
            raise TaskError(f"task {t.name} is a {t.kind} task; use a */{kind} task here")
        return t

    def media_policy(self, t: Task) -> ImagePolicy | VideoPolicy:
        """The policy media of task `t` are loaded under: a family whose script sends exactly k frames per
        video (`Task.video_frames`) gets k frames, uniformly."""
        if t.modality != "video":
            return self.image_policy
        vp = self.video_policy
        if t.video_frames and (vp.num_frames != t.video_frames or vp.fps is not None):
            vp = dataclasses.replace(vp, num_frames=t.video_frames, fps=None,
                                     max_frames=max(vp.max_frames, t.video_frames))
        return vp

    def method_for(self, t: Task, supports_probs: bool = True, backend: str = "backend") -> str:
        """How the verdict of task `t` is read: "probs" (choice probabilities right after the answer prefix),
        THINK (the judge reasons greedily up to the format's `reasoning_stop`, the choice is read there) or
        "generate" (the whole answer is written and parsed). A reasoning judge whose probabilities cannot be read
        after its reasoning is refused under method="probs": reading right after the prompt would skip it."""
        fmt = t.answer
        if self.method == "generate":
            return "generate"
        readable = getattr(fmt, "readable", True) and not fmt.dimensions
        can_read = readable and bool(supports_probs)
        if not (self.reasoning or getattr(fmt, "reasons_first", False)):
            return "probs" if can_read else "generate"
        stop = getattr(fmt, "reasoning_stop", None)
        if can_read and stop and self.reasoning is not False:
            return THINK
        if self.method == "auto":
            return "generate"
        why = ("reasoning=False was asked" if self.reasoning is False else
               f"the {backend} backend reads no token probabilities" if not supports_probs
               else "its verdict is not a choice that probabilities can be read for" if not readable
               else "its format names no point where the reasoning stops")
        raise TaskError(f"this judge reasons before its verdict ({t.name}) and {why}: its probabilities cannot be "
                        "read after its reasoning, and reading them right after the prompt would skip the "
                        "reasoning. Use method='generate' (or 'auto') to let it write and parse its verdict.")

    def fallback(self, t: Task, method: str) -> str | None:
        """Why `method` is not what this judge would do with token probabilities at hand (None when it is)."""
        best = self.method_for(t, supports_probs=True)
        if method == best:
            return None
        return (f"the backend reads no token probabilities, so {t.name}'s verdict was generated and parsed "
                f"instead of read as {best}")

    def generation(self, t: Task, supports_probs: bool = True) -> dict[str, Any]:
        """How the judge decodes task `t` (greedy always): the method, the budget, and where the choice is read."""
        method = self.method_for(t, supports_probs)
        fmt = t.answer
        out: dict[str, Any] = {"method": method, "temperature": 0, "max_new_tokens": self.max_new_tokens}
        if method == THINK:
            out["reasoning_stop"] = fmt.reasoning_stop
        if method != "generate":
            out["answer_prefix"] = fmt.reasoning_stop if method == THINK else fmt.prefix
            out["choices"] = list(fmt.choices().values())
        return out

    def stamp(self, t: Task) -> dict[str, Any]:
        """The fields every result of task `t` carries: what produced it."""
        return {"task_version": t.version, "template_hash": t.template_hash,
                "media_policy": self.media_policy(t).to_dict(), "family": t.family, "variant": t.variant,
                "warnings": list(self.warnings)}

    # -- flattened, for the backends and listings ------------------------------------------------------------
    def backend_options(self) -> dict[str, Any]:
        """The backend's own arguments this spec decides (chat template options; image encoding on OpenAI)."""
        out: dict[str, Any] = {"chat_template_kwargs": dict(self.chat_template_kwargs)}
        if self.backend == "openai":
            out["image_format"] = self.image_format
            if self.served_model:
                out["served_model"] = self.served_model
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["image_policy"] = self.image_policy.to_dict()
        d["video_policy"] = self.video_policy.to_dict()
        d["warnings"] = list(self.warnings)
        return d


_OVERRIDES = ("variant", "method", "reasoning", "max_new_tokens", "image_policy", "video_policy",
              "chat_template_kwargs", "image_format", "allow_urls")


def resolve_spec(model: str = "", *, backend: str = "hf", family: str | None = None, checkpoint: str | None = None,
                 served_model: str | None = None, **overrides: Any) -> JudgeSpec:
    """The judge spec for `model` (see the module docstring). Unknown keyword arguments are refused."""
    unknown = set(overrides) - set(_OVERRIDES)
    if unknown:
        raise TypeError(f"resolve_spec: unknown setting(s) {sorted(unknown)}; known: {', '.join(_OVERRIDES)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use {' or '.join(BACKENDS)}")
    warnings: list[str] = []
    sources: dict[str, str] = {}
    values: dict[str, Any] = {}

    def put(source: str, **kv: Any) -> None:
        for k, v in kv.items():
            if v is not None:
                values[k] = v
                sources[k] = source

    where = checkpoint if checkpoint else (served_model or "") if backend == "openai" else model
    entry, sidecar = lookup(where) if where else (None, {})
    if checkpoint and entry is None and not sidecar:
        if Path(checkpoint).is_dir():
            warnings.append(f"checkpoint folder {checkpoint} has no {SIDECAR} and is no copy of a registered "
                            "checkpoint: judged with unireward's own prompts and default settings")
        else:
            raise TaskError(f"checkpoint {checkpoint!r} is neither a registered checkpoint (see `unireward models`) "
                            "nor a judge folder")
    if backend == "openai" and not checkpoint and entry is None:
        warnings.append(f"served model {served_model or '(unnamed)'!r} is no registered checkpoint and no "
                        "checkpoint= was given: judged with unireward's own prompts and default settings (no "
                        "reasoning); pass checkpoint= (a registered name or the judge's folder) to run it as "
                        "it was trained")
    if backend == "hf" and not checkpoint and entry is None and not sidecar and model and Path(model).is_dir():
        warnings.append(f"{model} has no {SIDECAR} and is no copy of a registered checkpoint: judged with "
                        "unireward's own prompts and default settings")
    if entry is not None:
        put("registry", checkpoint=entry.name, family=entry.family, variant=entry.variant, method=entry.method,
            max_new_tokens=entry.max_new_tokens, image_policy=entry.image_policy(),
            video_policy=entry.video_policy(), chat_template_kwargs=dict(entry.chat_template_kwargs) or None,
            image_format=entry.request_image_format)
        if backend == "hf" and model.lower() in (entry.name.lower(), entry.checkpoint.lower()):
            model = entry.checkpoint  # a short name opens its hub id
    unknown_keys = set(sidecar) - set(SIDECAR_FIELDS) - {"checkpoint"}
    if unknown_keys:
        warnings.append(f"{SIDECAR}: unknown field(s) {sorted(unknown_keys)} ignored; known: "
                        f"{', '.join(SIDECAR_FIELDS)}, checkpoint")
    put("sidecar", **{k: sidecar.get(k) for k in SIDECAR_FIELDS})
    if family is not None and family != values.get("family", DEFAULT_FAMILY):
        if family not in list_families():
            raise TaskError(f"unknown family {family!r}; known: {', '.join(list_families())}")
        put("argument", family=family)
        values.pop("variant", None)  # another family: its own default prompts
        sources.pop("variant", None)
    if backend == "openai" and values.get("family", DEFAULT_FAMILY) != DEFAULT_FAMILY and "image_format" not in values:
        put("registry", image_format="jpeg")  # the released judges' client sends JPEG (quality 95)
    put("argument", **overrides)
    spec = JudgeSpec(model=model, backend=backend, served_model=served_model, warnings=tuple(warnings),
                     **values)
    all_sources = {f.name: "default" for f in dataclasses.fields(JudgeSpec)
                   if f.name not in ("model", "backend", "served_model", "sources", "warnings")}
    all_sources.update(sources)
    return dataclasses.replace(spec, sources=all_sources)


