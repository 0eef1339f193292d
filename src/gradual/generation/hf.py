"""The transformers backend (CPU and tests; GPU without vllm): batched, each prompt encoded once, stopped at the answer line.

Decoding is a small loop of our own rather than `generate()` because it needs three things
`generate()` does not give together: the prompt's KV cache computed once and shared by all of
its samples, a random generator per sampled row (so a draw never depends on its batch), and
rows leaving the batch as soon as their answer line ends.
"""

import inspect
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual.accelerator import device_and_dtype
from gradual.generation import GenerationSettings
from gradual.seeding import stable_seed


class HFBackend:
    def __init__(self, model_dir: str | Path, settings: GenerationSettings, adapter_dir: str | Path | None = None):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        device, dtype = device_and_dtype()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir))
        self.use(model, tokenizer, settings)

    @classmethod
    def from_model(cls, model, tokenizer, settings: GenerationSettings) -> "HFBackend":
        """A backend around a model already in memory (e.g. the one being fine-tuned)."""
        backend = cls.__new__(cls)
        backend.use(model, tokenizer, settings)
        return backend

    def use(self, model, tokenizer, settings: GenerationSettings) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.eval()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        forward = inspect.signature(type(base).forward).parameters
        self.cache_argument = "cache" if "cache" in forward else "past_key_values"  # renamed in transformers 5
        self.stop_ids = self._answer_end_tokens().to(model.device)  # compared with every decoded token

    def describe(self) -> dict:
        import transformers

        device = self.model.device
        return {
            "backend": "hf",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "batch_size": self.settings.batch_size,  # it fixes the padding, so greedy outputs depend on it
        }

    def _answer_end_tokens(self) -> torch.Tensor:
        """End of sequence, and every token whose text holds a line break."""
        newline = {i for i in range(len(self.tokenizer)) if "\n" in self.tokenizer.decode([i])}
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) - {None}
        return torch.tensor(sorted(newline | eos | {self.tokenizer.eos_token_id}))

    def greedy(self, prompts: list[str]) -> list[str]:
        return [texts[0] for texts in self._generate(prompts, n=1, seeds=None, desc="greedy")]

    def sample(self, prompts: list[str], seeds: list[int]) -> list[list[str]]:
        return self._generate(prompts, n=self.settings.n_samples, seeds=seeds, desc="sampling")

    def _generate(self, prompts: list[str], n: int, seeds: list[int] | None, desc: str) -> list[list[str]]:
        """Prompts grouped by length (less padding), decoded in batches of about `batch_size` rows."""
        lengths = [len(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        per_batch = max(1, self.settings.batch_size // n)
        results: list[list[str]] = [[] for _ in prompts]
        with tqdm(total=len(prompts), desc=desc, unit="prompt", mininterval=5) as progress:
            for start in range(0, len(order), per_batch):
                batch = order[start : start + per_batch]
                batch_seeds = None if seeds is None else [seeds[i] for i in batch]
                texts = self._decode_batch([prompts[i] for i in batch], n, batch_seeds)
                for position, index in enumerate(batch):
                    results[index] = texts[position * n : (position + 1) * n]
                progress.update(len(batch))
        return results

    @torch.inference_mode()
    def _decode_batch(self, prompts: list[str], n: int, seeds: list[int] | None) -> list[str]:
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.model.device)
        mask = encoded["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=encoded["input_ids"],
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache, logits = getattr(out, self.cache_argument), out.logits[:, -1, :]
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits, mask, positions = (t.repeat_interleave(n, dim=0) for t in (logits, mask, positions))
        generators = None
        if seeds is not None:
            generators = [
                torch.Generator().manual_seed(stable_seed(seed, sample)) for seed in seeds for sample in range(n)
            ]
        next_position = positions[:, -1] + 1
        active = torch.arange(logits.shape[0], device=logits.device)
        generated: list[list[int]] = [[] for _ in range(logits.shape[0])]
        for step in range(self.settings.max_new_tokens):
            tokens = self._pick(logits, active, generators)
            for row, token in zip(active.tolist(), tokens.tolist()):
                generated[row].append(token)
            running = ~torch.isin(tokens, self.stop_ids)
            if step + 1 == self.settings.max_new_tokens or not running.any():
                break
            if not running.all():
                keep = running.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                mask, next_position, tokens, active = mask[keep], next_position[keep], tokens[keep], active[keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=next_position[:, None],
                use_cache=True,
                **{self.cache_argument: cache},
            )
            logits, next_position = out.logits[:, -1, :], next_position + 1
        return self.tokenizer.batch_decode(generated, skip_special_tokens=True)

    def _pick(self, logits: torch.Tensor, active: torch.Tensor, generators: list | None) -> torch.Tensor:
        if generators is None:
            return logits.argmax(dim=-1)
        values, indices = (logits / self.settings.temperature).topk(self.settings.top_k, dim=-1)
        probs = values.float().softmax(dim=-1).cpu()  # the per-row generators live on the CPU
        draws = [torch.multinomial(probs[i], 1, generator=generators[row]) for i, row in enumerate(active.tolist())]
        return indices.gather(1, torch.stack(draws).to(indices.device)).squeeze(1)
