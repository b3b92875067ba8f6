"""The transformers backend: any checkpoint that `AutoModelForImageTextToText` + `AutoProcessor` load.

Requests are sorted by length and run in batches. `choice_probs` reads the decision from next-token probabilities
after the forced answer prefix (see `choices.py`: one forward pass per request for the built-in formats); its rows
are right-padded and run without a padding mask, since causal attention never looks past a row's end. `generate`
decodes greedily from left-padded rows within a token budget and stops as soon as every row has produced one of
the stop strings. `think_then_read` generates a reasoning judge's text until its stop string and reads the choices
after the generated token ids themselves (no re-tokenisation of the reasoning): the ids are cut at the last token
boundary at or before the stop's end, and the rest of the stop (the trailing space of "Final Judgment: ", which
the tokenizer joins to the next word) is tokenised together with each choice.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from ..errors import BackendError, PromptTooLongError
from .base import Backend, ChatInput, ReasonedChoice, unreached
from .choices import ChoicePlan, plan_choices
from .vision_cache import model_inputs, on_device


def chat_text(processor: Any, messages: list[dict], chat_template_kwargs: dict | None = None,
              add_generation_prompt: bool = True) -> str:
    """The chat template over `messages` with the judge's template options: the one prompt string of judging and
    training (the generation prompt added unless the messages end in an answer)."""
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **(chat_template_kwargs or {}))


def encode_prompts(processor: Any, texts: Sequence[str], images: Sequence[Any], videos: Sequence[Any],
                   padding_side: str = "left") -> dict:
    """The one processor call of judging and training: prompt strings with their images (PIL) and videos
    (`Video`, frames already sampled under the judge's policy), padded on `padding_side`."""
    kwargs: dict[str, Any] = {}
    if videos:
        kwargs["videos"] = [v.to_array() for v in videos]
        kwargs["do_sample_frames"] = False
        if hasattr(getattr(processor, "video_processor", None), "cap_pixels_per_frame"):  # Qwen2/3-VL: say it
            kwargs["cap_pixels_per_frame"] = videos[0].policy.cap_pixels_per_frame
        kwargs["video_metadata"] = [
            {"fps": v.fps, "total_num_frames": len(v.frames), "frames_indices": list(range(len(v.frames)))}
            for v in videos]
    enc = processor(text=list(texts), images=list(images) or None, padding=True, padding_side=padding_side,
                    return_tensors="pt", **kwargs)
    enc.pop("token_type_ids", None)
    return dict(enc)


class HFBackend(Backend):
    name = "transformers"

    def __init__(self, model: Any, processor: Any, batch_size: int = 8, max_length: int | None = None,
                 model_id: str = "", chat_template_kwargs: dict | None = None):
        self.model = model.eval()
        self.chat_template_kwargs = dict(chat_template_kwargs or {})  # e.g. Qwen3.5 judges: enable_thinking=False
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self.max_length = max_length or getattr(self.tokenizer, "model_max_length", None)
        self.model_id = model_id
        self._answer_ids = lru_cache(maxsize=4096)(self._answer_ids_uncached)
        self._plans: dict[tuple, ChoicePlan] = {}

    @classmethod
    def load(cls, path: str, device: str | None = None, dtype: str | None = "auto", batch_size: int = 8,
             attn_implementation: str | None = None, trust_remote_code: bool = False,
             chat_template_kwargs: dict | None = None) -> "HFBackend":
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        kwargs: dict[str, Any] = {"dtype": dtype if dtype in (None, "auto") else getattr(torch, dtype)}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
        except OSError as e:
            raise BackendError(f"could not load model {path!r}: {e}. Pass a local directory or a hub id "
                               "(with network access or a filled HF cache).") from None
        return cls(model.to(device), processor, batch_size=batch_size, model_id=str(path),
                   chat_template_kwargs=chat_template_kwargs)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "dtype": str(self.model.dtype).replace("torch.", ""),
                "device": str(self.device)}

    # -- tokenisation helpers ----------------------------------------------------------------------------------
    def _chat_text(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        return chat_text(self.processor, messages, self.chat_template_kwargs, add_generation_prompt)

    def prompt_text(self, x: ChatInput) -> str:
        """The prompt string this backend encodes for `x`."""
        return chat_text(self.processor, x.messages(), self.chat_template_kwargs)

    def _answer_ids_uncached(self, answer: str) -> tuple[int, ...]:
        """Token ids of `answer` as the start of the assistant turn (tokenised in context)."""
        ctx = self._chat_text([{"role": "user", "content": "x"}], add_generation_prompt=True)
        base = self.tokenizer(ctx, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(ctx + answer, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base:
            raise BackendError("the tokenizer merges the chat template's generation prompt with the answer; "
                               "choice probabilities cannot be read for this model")
        return tuple(full[len(base):])

    def _terminator(self) -> int | None:
        ctx = self._chat_text([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
        tail = ctx[ctx.rindex("y") + 1:]
        ids = self.tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
        return ids[0] if ids else self.tokenizer.eos_token_id

    def _plan(self, prefix: str, choices: Sequence[str]) -> ChoicePlan:
        key = (prefix, tuple(choices))
        if key not in self._plans:
            if len(self._plans) >= 4096:  # per-input reasoning prefixes: keep the cache bounded
                self._plans.clear()
            seqs = [list(self._answer_ids(prefix + c)) for c in choices]
            self._plans[key] = plan_choices(seqs, self._terminator())
        return self._plans[key]

    # the shared path (vision_cache.py), where the model allows: each distinct image/video of a call processed and
    # encoded once, and (choice_probs) each prompt prefix through the first medium run once for the rows sharing it
    share_media = True
    share_prefix = True

    def _shared_media(self, inputs: Sequence[ChatInput], repeat: int | Sequence[int] = 1):
        """The call's prompts with each distinct medium processed and encoded once, or None (plain path)."""
        from .vision_cache import SharedMedia

        if not self.share_media or not SharedMedia.supports(self):
            return None
        return SharedMedia(self, inputs, repeat=repeat)

    def encode(self, inputs: Sequence[ChatInput], padding_side: str = "left", shared=None,
               rows: Sequence[int] = ()) -> dict:
        """The processor's model inputs (CPU tensors) for `inputs` rendered as generation prompts, padded on
        `padding_side`; `shared`/`rows`: the call's shared-media preparation and these inputs' rows in it."""
        if shared is not None:  # `rows`: the indices of `inputs` in the call that `shared` prepared
            return shared.encode(rows, padding_side)
        return encode_prompts(self.processor, [self.prompt_text(x) for x in inputs],
                              [im for x in inputs for im in x.images], [v for x in inputs for v in x.videos],
                              padding_side)

    def check_length(self, length: int) -> None:
        """Raise PromptTooLongError when a sequence of `length` tokens exceeds the model's context."""
        if self.max_length and length > self.max_length:
            raise PromptTooLongError(f"request is {length} tokens, over the model's context of {self.max_length}; "
                                     "lower the video frame count or pixel budget, or shorten the prompt")

    def _batches(self, items: Sequence[Any], key) -> list[list[int]]:
        order = sorted(range(len(items)), key=key)
        return [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    @staticmethod
    def _size_key(x: ChatInput) -> tuple:
        media = sum(im.width * im.height for im in x.images) + sum(
            len(v.frames) * v.frames[0].width * v.frames[0].height for v in x.videos)
        return (media, sum(len(p) for p in x.parts if isinstance(p, str)))

    # -- the two request types ---------------------------------------------------------------------------------
    def choice_probs(self, inputs, prefix, choices):
        prefixes = [prefix] * len(inputs) if isinstance(prefix, str) else list(prefix)
        return self._read_choices(inputs, [()] * len(inputs), [self._plan(p, choices) for p in prefixes])

    def think_then_read(self, inputs, stop, choices, max_new_tokens=256):
        out: list[ReasonedChoice | None] = [None] * len(inputs)
        cuts: dict[int, tuple[list[int], str, str]] = {}
        for batch, start, _, gen in self.generate_batches(inputs, max_new_tokens, [stop]):
            for b, i in enumerate(batch):
                ids = gen.sequences[b, start:].tolist()
                cut = self._cut_at_stop(ids, stop)
                if cut is None:
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                    out[i] = ReasonedChoice(text, None, unreached(stop, max_new_tokens))
                else:
                    cuts[i] = cut
        order = sorted(cuts)
        rows = self._read_choices([inputs[i] for i in order], [cuts[i][0] for i in order],
                                  [self._plan(cuts[i][1], choices) for i in order])
        for i, row in zip(order, rows):
            out[i] = ReasonedChoice(cuts[i][2], row)
        return out  # type: ignore[return-value]

    def _cut_at_stop(self, ids: list[int], stop: str) -> tuple[list[int], str, str] | None:
        """(kept ids, rest of the text up to the stop's end, text up to the stop's end) for generated `ids`, or
        None when the stop never came. The kept ids are the shortest run whose text holds the stop, less its
        last token when that token runs past the stop's end."""
        def text(n: int) -> str:
            return self.tokenizer.decode(ids[:n], skip_special_tokens=True)

        if stop not in text(len(ids)):
            return None
        lo, hi = 1, len(ids)
        while lo < hi:  # the fewest tokens whose text holds the stop
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if stop in text(mid) else (mid + 1, hi)
        full = text(lo)
        end = full.index(stop) + len(stop)
        if end == len(full):
            return ids[:lo], "", full
        before = text(lo - 1)
        if full.startswith(before) and len(before) < end:
            return ids[: lo - 1], full[len(before): end], full[:end]
        return [], full[:end], full[:end]  # decoding is not prefix-stable here: re-tokenise the text in context

    def _read_choices(self, inputs: Sequence[ChatInput], heads: Sequence[Sequence[int]],
                      plans: Sequence[ChoicePlan]) -> list[list[float]]:
        """For each input: its prompt, then the token ids `heads[i]`, then its plan's choice paths; the choice
        probabilities normalised over the choices."""
        import torch

        if not inputs:
            return []
        keep = max(p.max_path_len for p in plans) + 1  # logits kept at the end of each row
        rows = [(i, q) for i in range(len(inputs)) for q in range(len(plans[i].paths))]
        scores = torch.zeros(len(inputs), len(plans[0].factors), dtype=torch.float64)
        shared = self._shared_media(inputs, repeat=[len(p.paths) for p in plans])
        for batch in self._batches(rows, key=lambda r: (self._size_key(inputs[rows[r][0]]), len(heads[rows[r][0]])) + (
                shared.prefix_key(rows[r][0]) if shared is not None else ())):  # rows sharing a prefix together
            enc = self.encode([inputs[rows[r][0]] for r in batch], padding_side="right", shared=shared,
                              rows=[rows[r][0] for r in batch])
            ends = self._append_right(enc, [list(heads[i]) + list(plans[i].common) + list(plans[i].paths[q])
                                            for i, q in (rows[r] for r in batch)])
            self.check_length(int(ends.max()))
            window = ends[:, None] - keep + torch.arange(keep)  # each row's last `keep` positions
            with torch.inference_mode():
                enc, window = on_device(enc, self.device), window.to(self.device)
                out = shared.forward(enc, window) if shared is not None else self.model(**enc, logits_to_keep=window)
            if tuple(out.logits.shape[:-1]) != (len(batch), keep):  # a 2-D logits_to_keep needs transformers 5.21+
                raise BackendError(f"the model returned logits of shape {tuple(out.logits.shape)} for per-row "
                                   f"positions; upgrade transformers to >= 5.21 (`pip install -U transformers`) "
                                   f"or judge with method='generate'")
            lp = torch.log_softmax(out.logits.float(), dim=-1)
            # (row in batch, input, choice, index among the row's kept logits, token) of each factor read from
            # the row's path: the logit predicting tail position d sits len(path) - d positions before the row's end
            reads = [(b, i, c, keep - 1 - len(plans[i].paths[q]) + d, tok)
                     for b, (i, q) in enumerate(rows[r] for r in batch)
                     for c, fs in enumerate(plans[i].factors) for p, d, tok in fs if p == q]
            if reads:
                b, i, c, k, tok = (torch.tensor(column) for column in zip(*reads))
                scores.index_put_((i, c), lp[b, k, tok].double().cpu(), accumulate=True)
        return torch.softmax(scores, dim=-1).tolist()

    def _append_right(self, enc: dict, suffixes: list[list[int]]):
        """Append token suffixes to right-padded rows in place and return the rows' new lengths. The attention
        mask becomes all ones: causal attention never reaches the padding after a row's end, and without padding
        in the mask the model runs its plain causal kernel. The other per-token tensors (multimodal token types)
        are zero on the suffix."""
        import torch
        import torch.nn.functional as F

        ids, mask = enc["input_ids"], enc["attention_mask"]
        lengths = mask.sum(dim=1)
        longest = max(len(s) for s in suffixes)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        tail = torch.full((len(suffixes), longest), pad, dtype=ids.dtype)
        for b, s in enumerate(suffixes):
            tail[b, : len(s)] = torch.tensor(s, dtype=ids.dtype)
        width = int(lengths.max()) + longest
        cols = lengths[:, None] + torch.arange(longest)
        for key in [k for k, v in enc.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]:
            new = F.pad(enc[key], (0, width - ids.shape[1]), value=pad if key == "input_ids" else 0)
            if key == "input_ids":
                new.scatter_(1, cols, tail)
            elif key == "attention_mask":
                new.fill_(1)
            else:
                new.scatter_(1, cols, 0)
            enc[key] = new
        return lengths + torch.tensor([len(s) for s in suffixes])

    def _append_left(self, enc: dict, suffixes: list[list[int]]) -> None:
        """Append token suffixes to left-padded rows in place, keeping the batch left-padded. Every per-token
        tensor of the encoding (ids, mask, multimodal token types) is extended alongside."""
        import torch

        ids, mask = enc["input_ids"], enc["attention_mask"]
        per_token = [k for k, v in enc.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]
        lengths = [int(m.sum()) + len(s) for m, s in zip(mask, suffixes)]
        width = max(lengths)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for key in per_token:
            old = enc[key]
            new = torch.full((len(suffixes), width), pad if key == "input_ids" else 0, dtype=old.dtype)
            for b, s in enumerate(suffixes):
                kept = old[b][mask[b].bool()]
                if key == "input_ids":
                    tail = torch.tensor(s, dtype=old.dtype)
                else:
                    tail = torch.full((len(s),), 1 if key == "attention_mask" else 0, dtype=old.dtype)
                new[b, width - lengths[b]:] = torch.cat([kept, tail])
            enc[key] = new

    def generate_batches(self, inputs, max_new_tokens=256, stop=None, prefix="", output_logits=False):
        """Greedy generation in length-sorted, left-padded batches, stopping rows at `stop` strings. Yields
        (input indices, prompt width, prompt lengths, generate output) per batch; `generate` and the server's
        chat endpoint (which also wants per-step logits) are built on it."""
        import torch
        from transformers import StoppingCriteriaList

        prefix_ids = list(self._answer_ids(prefix)) if prefix else []
        tok = self.tokenizer
        shared = self._shared_media(inputs)
        for batch in self._batches(range(len(inputs)), key=lambda i: self._size_key(inputs[i])):
            enc = self.encode([inputs[i] for i in batch], shared=shared, rows=batch)
            if prefix_ids:
                self._append_left(enc, [prefix_ids] * len(batch))
            start = enc["input_ids"].shape[1]
            self.check_length(start)
            criteria = StoppingCriteriaList([_stop_on_strings(tok, start, stop)]) if stop else None
            with torch.inference_mode():
                out = self.model.generate(**model_inputs(on_device(enc, self.device)),
                                          max_new_tokens=max_new_tokens, do_sample=False,
                                          stopping_criteria=criteria, pad_token_id=tok.pad_token_id,
                                          return_dict_in_generate=True, output_logits=output_logits)
            yield batch, start, enc["attention_mask"].sum(dim=1).tolist(), out

    def generate(self, inputs, max_new_tokens=256, stop=None, prefix=""):
        texts = [""] * len(inputs)
        for batch, start, _, out in self.generate_batches(inputs, max_new_tokens, stop, prefix):
            for b, i in enumerate(batch):
                texts[i] = self.tokenizer.decode(out.sequences[b, start:], skip_special_tokens=True)
        return texts


def _stop_on_strings(tokenizer, start: int, stop: Sequence[str]):
    """A stopping criterion: a row is done once its decoded continuation contains any stop string."""
    import torch
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = [any(s in tokenizer.decode(row[start:], skip_special_tokens=True) for s in stop)
                    for row in input_ids]
            return torch.tensor(done, device=input_ids.device)

    return StopOnStrings()
