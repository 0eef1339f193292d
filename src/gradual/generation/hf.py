"""The transformers backend (CPU and tests; GPU without vllm): each prompt encoded once, stopped at the answer line.

Decoding is a small loop of our own rather than `generate()` because it needs what `generate()`
does not give together: a prompt's key/value cache computed once and shared by its greedy answer
and all of its samples (and, with an exemplar pool, an exemplar set's cache shared by every prompt
that uses it), random numbers that depend on nothing but (seed, question, prompt, sample, step) so
a draw never depends on its batch, and rows leaving the batch as soon as their answer line ends.
"""

import inspect
import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from gradual.accelerator import device_and_dtype, dtype_name
from gradual.generation import GenerationSettings
from gradual.matching import ANSWER_END

SAMPLER = "gumbel-max over the top-k, counter-based uniforms (lowbias32 of seed, sample, step, rank)"
_MASK32 = 0xFFFFFFFF
# cuDNN's attention builds an execution plan for every new shape, and decoding changes the shape at
# every step (the cache grows, finished rows leave): on a GPU, attention runs on the other kernels.
GPU_ATTENTION_KERNELS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
# Cache layers whose whole per-row state is `keys` and `values` (the rest, such as a sliding window's
# count of the tokens seen, is the same for every row): a prompt's cache can be kept and branched.
# Full attention (Llama, Qwen, SmolLM2) and sliding windows (Gemma 3, Mistral) use these.
BRANCHABLE_LAYERS = (DynamicLayer, DynamicSlidingWindowLayer)
LENGTH_GROUPS = 4  # a chunk's prompts are encoded in up to this many groups of similar length (8 or more each)

log = logging.getLogger(__name__)


def branchable(cache) -> bool:
    """Whether every layer of a key/value cache is of a kind whose per-row state is keys and values."""
    return all(type(layer) in BRANCHABLE_LAYERS for layer in getattr(cache, "layers", [None]))


def _multiply32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2**32 for 32-bit x held in int64, in two 16-bit halves so nothing overflows."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (Chris Wellons' integer hash): every input bit flips about half the output bits."""
    x = x ^ (x >> 16)
    x = _multiply32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _multiply32(x, 0x846CA68B)
    return x ^ (x >> 16)


def counter_uniforms(seeds: torch.Tensor, samples: torch.Tensor, step: int, width: int) -> torch.Tensor:
    """Uniforms in (0, 1), shape (rows, width): a pure function of (seed, sample, step, column), so a
    row's draws are the same in any batch, on any device, and need no generator state."""
    h = _mix32((seeds[:, None] & _MASK32) ^ 0x9E3779B9)
    h = _mix32(h ^ samples[:, None])
    h = _mix32(h ^ step)
    h = _mix32(h ^ torch.arange(width, device=seeds.device)[None, :])
    return ((h >> 8).float() + 0.5) / float(1 << 24)


def _contiguous_input(module, args):
    return (args[0].contiguous(), *args[1:]) if args else None


def multiply_last_positions_plainly(model) -> None:
    """With `logits_to_keep=1` the output layer gets a strided slice of the hidden states. torch (2.13,
    CPU, bfloat16) multiplies such a slice with a frozen weight (an adapter's base model, or one merged
    with it) by copying the weight once per row: 4.4 s and 3.4 GB for SmolLM2's output layer on 64
    prompts, against 0.02 s for the same product on a contiguous copy of the slice, which this hands it."""
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "takes_contiguous_input", False):
        head.register_forward_pre_hook(_contiguous_input)
        head.takes_contiguous_input = True


def _mergeable(cache, mask: torch.Tensor) -> bool:
    """Whether a cache's rows can be left-padded: layers of known kinds, each holding every position of
    its mask (not a sliding window past its length)."""
    return branchable(cache) and all(layer.keys.shape[-2] == mask.shape[1] for layer in cache.layers)


def _merge_left_padded(parts: list[tuple], rows: torch.Tensor):
    """(logits, cache, mask) of groups of prompts (each `_mergeable`) as one batch: every cache layer
    and mask left-padded to the widest group (zeros, masked), the rows put in the order `rows`. Each
    group's layer is let go once merged, so the merge holds one layer twice at most."""
    width = max(mask.shape[1] for _, _, mask in parts)
    merged = parts[0][1]
    for index, layer in enumerate(merged.layers):
        for name in ("keys", "values"):
            padded = [
                F.pad(getattr(cache.layers[index], name), (0, 0, width - mask.shape[1], 0)) for _, cache, mask in parts
            ]
            for _, cache, _ in parts[1:]:
                setattr(cache.layers[index], name, None)
            setattr(layer, name, torch.cat(padded)[rows])
            del padded
        if hasattr(layer, "cumulative_length"):  # a sliding window's count of the positions seen
            layer.cumulative_length = width
    logits = torch.cat([logits for logits, _, _ in parts])[rows]
    mask = torch.cat([F.pad(mask, (width - mask.shape[1], 0)) for _, _, mask in parts])[rows]
    return logits, merged, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Each token's position counted over the unmasked tokens before it (left padding gets 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


class HFBackend:
    def __init__(self, model_dir: str | Path, settings: GenerationSettings, adapter_dir: str | Path | None = None):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        device, dtype = device_and_dtype(settings.dtype)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
        if adapter_dir:
            from peft import PeftModel

            # merged into the weights: generation then costs what the plain model costs
            model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        self.use(model, tokenizer, settings)

    @classmethod
    def from_model(cls, model, tokenizer, settings: GenerationSettings) -> "HFBackend":
        """A backend around a model already in memory (e.g. the one being fine-tuned)."""
        backend = cls.__new__(cls)
        backend.use(model, tokenizer, settings)
        return backend

    def use(self, model, tokenizer, settings: GenerationSettings) -> None:
        self.settings = settings
        self.chunk_prompts = settings.batch_size
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.eval()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        multiply_last_positions_plainly(base)
        forward = inspect.signature(type(base).forward).parameters
        self.cache_argument = "cache" if "cache" in forward else "past_key_values"  # renamed in transformers 5
        self.stop_ids = self._answer_end_tokens().to(model.device)  # compared with every decoded token
        self.told_unbranchable = False

    def describe(self) -> dict:
        import transformers

        device = self.model.device
        return {
            "backend": "hf",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "dtype": dtype_name(self.model.dtype),
            "batch_size": self.settings.batch_size,  # it fixes the padding, so greedy outputs depend on it
            "sampler": SAMPLER,
        }

    def _answer_end_tokens(self) -> torch.Tensor:
        """End of sequence, and every token whose text holds the answer's end, a line break (Gemma's "\n\n" too)."""
        texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
        newline = {i for i, text in enumerate(texts) if ANSWER_END in text}
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) - {None}
        return torch.tensor(sorted(newline | eos | {self.tokenizer.eos_token_id}))

    def open(self, prompts: list[str], seeds: list[int] | None = None, prefixes: list[str] | None = None):
        """The prompts encoded once (a `PromptSession`); `prefixes[i]`, where given, is the start of
        prompt i that other prompts share (its exemplar set), encoded once per distinct prefix."""
        return PromptSession(self, prompts, seeds, prefixes)

    def greedy(self, prompts: list[str]) -> list[str]:
        chunks = range(0, len(prompts), max(1, self.chunk_prompts))
        return [text for start in chunks for text in self.open(prompts[start : start + self.chunk_prompts]).greedy()]

    def forward(self, input_ids, attention_mask, position_ids, cache=None):
        """Last-position logits and the cache, for a batch whose padding may sit anywhere in the mask."""
        kernels = sdpa_kernel(GPU_ATTENTION_KERNELS) if input_ids.device.type == "cuda" else nullcontext()
        with kernels:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=True,
                logits_to_keep=1,
                **({self.cache_argument: cache} if cache is not None else {}),
            )
        return out.logits[:, -1, :], getattr(out, self.cache_argument)


class PromptSession:
    """Prompts encoded once: greedy answers and any number of samples decode from the same cache.

    Decoding appends to a cache by concatenation (never in place), so the prompt's key/value
    tensors and the rest of each layer's state, kept here, stay valid for every later branch. A
    cache with layers of another kind (`BRANCHABLE_LAYERS`) is not branched: each decoding after
    the first encodes its prompts again (slower, the same answers), and the backend says so once."""

    @torch.inference_mode()
    def __init__(self, backend: HFBackend, prompts: list[str], seeds: list[int] | None, prefixes: list[str] | None):
        self.backend = backend
        self.settings = backend.settings
        self.prompts = prompts
        device = backend.model.device
        self.seeds = None if seeds is None else torch.tensor(seeds, dtype=torch.int64, device=device)
        encoded = None if prefixes is None else self._encode_after_prefixes(prompts, prefixes)
        self.logits, self.cache, self.mask, self.next_position = encoded or self._encode_whole(prompts)
        self.branchable = branchable(self.cache)
        self.layers = [dict(vars(layer)) for layer in self.cache.layers] if self.branchable else None
        self.encoding_used = False
        if not self.branchable and not backend.told_unbranchable:
            log.warning("%s cannot be branched: every decoding encodes its prompts again", type(self.cache).__name__)
            backend.told_unbranchable = True

    def _encode_whole(self, prompts: list[str], grouped: bool = True):
        """The prompts in groups of similar length (`LENGTH_GROUPS`), each padded only to its own
        longest, their caches then left-padded to one width with masked zeros: a forward pass spends
        nothing on that padding (a chunk's prompts differ by their exemplars: 17% of a chunk's tokens
        were padding on `bench/detection.py`'s prompts). One padded batch where a cache has layers it
        cannot merge so (`BRANCHABLE_LAYERS`, or a sliding window that already dropped tokens), and
        where the caller already knows it (`grouped` False), without encoding a group first."""
        ids = self.backend.tokenizer(prompts)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        groups = np.array_split(order, min(LENGTH_GROUPS, max(1, len(ids) // 8)))
        merged = None
        if grouped and len(groups) > 1:
            longest = self._encode_padded([ids[i] for i in groups[-1]])  # the one a sliding window may cut
            if _mergeable(*longest[1:]):
                parts = [self._encode_padded([ids[i] for i in group]) for group in groups[:-1]] + [longest]
                merged = _merge_left_padded(parts, torch.tensor(order, device=self.backend.model.device).argsort())
        logits, cache, mask = merged or self._encode_padded(ids)
        return logits, cache, mask, _positions(mask)[:, -1] + 1

    def _encode_padded(self, ids: list[list[int]]):
        """Logits, cache and mask of token sequences left-padded to the longest."""
        batch = self.backend.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(self.backend.model.device)
        mask = batch["attention_mask"]
        logits, cache = self.backend.forward(batch["input_ids"], mask, _positions(mask))
        return logits, cache, mask

    def _encode_after_prefixes(self, prompts: list[str], prefixes: list[str]):
        """Each distinct prefix encoded once, then each prompt's own tokens on a copy of its prefix's
        cache (padding between the two parts is masked). None where a prompt's tokens do not start
        with its prefix's tokens (a merge across the boundary): the caller then encodes whole prompts."""
        backend, tokenizer = self.backend, self.backend.tokenizer
        device = backend.model.device
        distinct = list(dict.fromkeys(prefixes))
        prefix_ids = tokenizer(distinct)["input_ids"]
        owner = [distinct.index(prefix) for prefix in prefixes]
        suffixes = []
        for ids, prefix in zip(tokenizer(prompts)["input_ids"], owner):
            head = prefix_ids[prefix]
            if ids[: len(head)] != head or len(ids) == len(head):
                return None
            suffixes.append(ids[len(head) :])
        head = tokenizer.pad({"input_ids": prefix_ids}, return_tensors="pt").to(device)
        head_positions = _positions(head["attention_mask"])
        _, cache = backend.forward(head["input_ids"], head["attention_mask"], head_positions)
        if not branchable(cache):
            return None  # a cache of unknown layers cannot be copied per prompt: whole prompts then
        rows = torch.tensor(owner, device=device)
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[rows], layer.values[rows]
        tail = tokenizer.pad({"input_ids": suffixes}, return_tensors="pt").to(device)
        mask = torch.cat([head["attention_mask"][rows], tail["attention_mask"]], dim=1)
        positions = (head_positions[rows, -1:] + tail["attention_mask"].cumsum(-1)).clamp(min=0)
        logits, cache = backend.forward(tail["input_ids"], mask, positions, cache)
        return logits, cache, mask, positions[:, -1] + 1

    def _start(self, rows: torch.Tensor | None):
        """The cache, last logits, mask and next position of the given prompt rows (all where None)."""

        def of_rows(tensor: torch.Tensor) -> torch.Tensor:
            return tensor if rows is None else tensor[rows]

        if not self.branchable:
            if self.encoding_used or rows is not None:  # the cache of the first encoding is spent, or too wide
                prompts = self.prompts if rows is None else [self.prompts[i] for i in rows.tolist()]
                logits, cache, mask, next_position = self._encode_whole(prompts, grouped=False)
                return cache, logits, mask, next_position
            self.encoding_used = True
            return self.cache, self.logits, self.mask, self.next_position
        for layer, state in zip(self.cache.layers, self.layers):
            vars(layer).update(state)
            layer.keys, layer.values = of_rows(state["keys"]), of_rows(state["values"])
        return self.cache, of_rows(self.logits), of_rows(self.mask), of_rows(self.next_position)

    def greedy(self) -> list[str]:
        return self._decode(None, None)

    def sample(self, rows: list[int], samples: range) -> list[list[str]]:
        """Samples `samples` (indices, e.g. range(4, 8)) of the given prompt rows, in batches of at
        most `batch_size` rows; sample s of a prompt draws the same noise whichever range or batch it is
        in, so in float32 it is the same sample (in bfloat16 a near tie can fall otherwise in another batch)."""
        pairs = [(row, sample) for row in rows for sample in samples]
        texts, device = [], self.logits.device
        for start in range(0, len(pairs), max(1, self.settings.batch_size)):
            batch = pairs[start : start + self.settings.batch_size]
            texts += self._decode(
                torch.tensor([row for row, _ in batch], device=device),
                torch.tensor([sample for _, sample in batch], device=device),
            )
        width = len(samples)
        return [texts[i * width : (i + 1) * width] for i in range(len(rows))]

    @torch.inference_mode()
    def _decode(self, rows: torch.Tensor | None, samples: torch.Tensor | None) -> list[str]:
        """Greedy (`samples` None) or sampled continuations of the prompt rows, up to the answer line's end.

        Continuations that have drawn the same tokens so far share one row of the batch (a prompt's
        samples do, at first always and then often): its forward pass is computed once, and each of
        them draws its next token from that row's logits with its own noise, so sharing changes no draw.
        A row splits where its continuations draw different tokens."""
        backend, settings = self.backend, self.settings
        distinct, owner = rows, None
        if rows is not None and self.branchable:  # a cache of unknown layers is never asked to repeat a row
            distinct, owner = torch.unique(rows, return_inverse=True)
        cache, logits, mask, next_position = self._start(distinct)
        owner = torch.arange(logits.shape[0], device=logits.device) if owner is None else owner
        seeds = None if samples is None else (self.seeds if rows is None else self.seeds[rows])
        active = torch.arange(len(owner), device=logits.device)  # the continuations still going
        pad = backend.tokenizer.pad_token_id
        generated = torch.full((len(owner), settings.max_new_tokens), pad, device=logits.device)
        for step in range(settings.max_new_tokens):
            if samples is None:  # greedy: row i is continuation i throughout
                tokens = logits.argmax(dim=-1)
            else:
                tokens = self._draw(logits, owner, seeds[active], samples[active], step)
            generated[active, step] = tokens
            running = ~torch.isin(tokens, backend.stop_ids)
            if step + 1 == settings.max_new_tokens or not running.any():
                break
            keep = running.nonzero().squeeze(1)
            owner, tokens, active = owner[keep], tokens[keep], active[keep]
            if samples is None:  # nothing shared: rows only leave the batch
                parents, owner = owner, torch.arange(len(keep), device=keep.device)
                moved = len(parents) != len(mask)
            else:
                branches, owner = torch.unique(owner * logits.shape[-1] + tokens, return_inverse=True)
                parents, tokens = branches // logits.shape[-1], branches % logits.shape[-1]
                moved = len(parents) != len(mask) or not torch.equal(
                    parents, torch.arange(len(mask), device=keep.device)
                )
            if moved:
                cache.batch_select_indices(parents)
                mask, next_position = mask[parents], next_position[parents]
            mask = torch.cat([mask, mask.new_ones(len(parents), 1)], dim=1)
            logits, cache = backend.forward(tokens[:, None], mask, next_position[:, None], cache)
            next_position = next_position + 1
        return backend.tokenizer.batch_decode(self._until_stop(generated), skip_special_tokens=True)

    def _draw(
        self, logits: torch.Tensor, owner: torch.Tensor, seeds: torch.Tensor, samples: torch.Tensor, step: int
    ) -> torch.Tensor:
        """Gumbel-max over the top-k of logits / temperature (continuation i draws from row `owner[i]`):
        the same law as softmax sampling, with every continuation's noise a function of its counters,
        computed on the model's device in one go."""
        values, indices = (logits.float() / self.settings.temperature).topk(self.settings.top_k, dim=-1)
        values, indices = values[owner], indices[owner]
        uniforms = counter_uniforms(seeds, samples, step, values.shape[-1])
        choice = (values - torch.log(-torch.log(uniforms))).argmax(dim=-1, keepdim=True)
        return indices.gather(1, choice).squeeze(1)

    def _until_stop(self, generated: torch.Tensor) -> list[list[int]]:
        """Each row's tokens up to and including its first stop token."""
        stops = torch.isin(generated, self.backend.stop_ids)
        ends = torch.where(stops.any(dim=1), stops.int().argmax(dim=1) + 1, generated.shape[1])
        return [row[:end] for row, end in zip(generated.tolist(), ends.tolist())]
