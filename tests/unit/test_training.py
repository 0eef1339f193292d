"""LoRA fine-tuning on a tiny random Llama with the real SmolLM2 tokenizer: fast, on CPU."""

import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import gradual.training as training_module
from gradual.errors import InputError
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import is_correct
from gradual.prompts import PromptFormat
from gradual.training import (
    CHECKPOINT_CONTENT,
    METRIC_COLUMNS,
    TRAINER,
    TrainingSettings,
    best_adapter,
    collate,
    encode_example,
    finetune,
    select_best_epoch,
    step_plan,
    training_examples,
)

PAIRS = pd.DataFrame(
    {
        "question_id": [f"q{i}" for i in range(6)],
        "question": [
            "Where was Ada Lovelace born?",
            "What is the capital of Peru?",
            "Who wrote Hamlet?",
            "In which country is Kyoto?",
            "What is the capital of Chile?",
            "Who painted Guernica?",
        ],
        "answer": ["London", "Lima", "William Shakespeare", "Japan", "Santiago", "Pablo Picasso"],
    }
)
EXAMPLES = training_examples(PAIRS, PromptFormat())
# Accuracies the fake evaluation reports for epochs 1, 2, 3: dev prefers epoch 2, test epoch 1.
ACCURACIES = {1: (0.2, 0.5), 2: (0.4, 0.3), 3: (0.1, 0.1)}
LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def settings(**changes) -> TrainingSettings:
    values = {
        "epochs": 2, "learning_rate": 1e-2, "batch_size": 4, "micro_batch_size": 2, "lora_rank": 4,
        "lora_alpha": 16, "lora_dropout": 0.1, "max_length": 48, "seed": 0,
    }  # fmt: skip
    return TrainingSettings(**(values | changes))


class FakeEvaluation:
    """Counts its calls and reports ACCURACIES for the epoch it believes it is at."""

    def __init__(self, first_epoch: int = 1):
        self.first_epoch = first_epoch
        self.calls = []

    def __call__(self, model, tokenizer):
        self.calls.append({"model": model, "training": model.training, "tokenizer": tokenizer})
        tokenizer.padding_side = "left"  # as HFBackend.from_model does: training must not care
        dev, test = ACCURACIES[self.first_epoch + len(self.calls) - 1]
        return {"dev_accuracy": dev, "test_accuracy": test}


def same_examples(epoch: int) -> pd.DataFrame:
    return EXAMPLES


def adapter_weights(folder):
    return load_file(folder / "adapter_model.safetensors")


def global_step(checkpoint) -> int:
    return json.loads((checkpoint / "trainer" / "trainer_state.json").read_text())["global_step"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


@pytest.fixture(scope="module")
def tiny_model(smollm2, tmp_path_factory):
    """A 2-layer random Llama with the SmolLM2 tokenizer (the real vocabulary, tiny weights)."""
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, tie_word_embeddings=True,
        initializer_range=0.1,  # embeddings large enough for a rank-4 adapter to move the loss in a few steps
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def two_epochs(tiny_model, tmp_path_factory):
    """One 2-epoch run on the same six examples every epoch, shared by several tests."""
    checkpoints = tmp_path_factory.mktemp("two-epochs")
    evaluation = FakeEvaluation()
    metrics = finetune(tiny_model, same_examples, settings(), checkpoints, evaluation)
    return checkpoints, metrics, evaluation


# --- examples -----------------------------------------------------------------------------------


def test_training_examples_are_the_zero_shot_query_and_the_answer_line():
    assert EXAMPLES.columns.tolist() == ["question_id", "prompt", "target"]
    assert EXAMPLES.iloc[0].tolist() == ["q0", "Q: Where was Ada Lovelace born?\nA:", " London\n"]
    assert EXAMPLES.iloc[2].tolist() == ["q2", "Q: Who wrote Hamlet?\nA:", " William Shakespeare\n"]
    custom = training_examples(PAIRS.head(2), PromptFormat(template="Question: {question} => {answer}."))
    assert custom["prompt"].tolist() == [
        "Question: Where was Ada Lovelace born? =>",
        "Question: What is the capital of Peru? =>",
    ]
    assert custom["target"].tolist() == [" London.\n", " Lima.\n"]


def test_encode_example_masks_the_prompt_and_labels_the_answer(tokenizer):
    prompt, target = "Q: Where was X born?\nA:", " Paris\n"
    encoded = encode_example(tokenizer, prompt, target)
    prompt_ids = tokenizer(prompt).input_ids
    target_ids = tokenizer(target, add_special_tokens=False).input_ids
    assert target_ids == [7042, 198]  # ' Paris', '\n' in the SmolLM2 vocabulary
    assert encoded["input_ids"].tolist() == prompt_ids + target_ids
    assert encoded["labels"].tolist() == [-100] * len(prompt_ids) + target_ids


def test_collate_pads_on_the_right_whatever_the_tokenizer_says(tokenizer):
    tokenizer.padding_side = "left"
    short = encode_example(tokenizer, "Q: a?\nA:", " b\n")
    long = encode_example(tokenizer, "Q: a much longer question?\nA:", " c\n")
    batch = collate([short, long], pad_id=0)
    n = len(short["input_ids"])
    assert batch["input_ids"].shape == (2, len(long["input_ids"]))
    assert batch["input_ids"][0, :n].tolist() == short["input_ids"].tolist()
    assert batch["input_ids"][0, n:].eq(0).all()
    assert batch["labels"][0, :n].tolist() == short["labels"].tolist()
    assert batch["labels"][0, n:].eq(-100).all()
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
    assert batch["attention_mask"][1].eq(1).all()
    assert batch["labels"][1].tolist() == long["labels"].tolist()


# --- settings and epoch selection ---------------------------------------------------------------


def test_settings_from_config_take_the_stage_rates_and_ignore_other_keys():
    values = {
        "epochs": 5, "batch_size": 16, "micro_batch_size": 4, "lora_rank": 8, "target_modules": ["q_proj", "v_proj"],
        "selection_split": "test", "learning_rate": 1.5e-4, "weight_decay": 0.01, "replay_ratio": 0.2,
    }  # fmt: skip
    got = TrainingSettings.from_config(values)
    assert (got.epochs, got.batch_size, got.micro_batch_size, got.lora_rank) == (5, 16, 4, 8)
    assert (got.learning_rate, got.weight_decay, got.selection_split) == (1.5e-4, 0.01, "test")
    assert got.target_modules == ["q_proj", "v_proj"] and got.lora_alpha == 16 and got.max_length == 256
    assert TrainingSettings.from_config({"epochs": 1, "learning_rate": 3e-4}).weight_decay == 0.0
    with pytest.raises(InputError, match="selection_split"):
        TrainingSettings.from_config({"epochs": 1, "selection_split": "train", "learning_rate": 3e-4})


def test_select_best_epoch_by_split_with_ties_to_the_earliest():
    metrics = pd.DataFrame(
        {"epoch": [3, 1, 2], "dev_accuracy": [0.4, 0.2, 0.4], "test_accuracy": [0.6, 0.5, 0.3], "train_loss": [1.0] * 3}
    )
    assert select_best_epoch(metrics, "dev") == 2  # epochs 2 and 3 tie on dev
    assert select_best_epoch(metrics, "test") == 3
    with pytest.raises(ValueError, match="train"):
        select_best_epoch(metrics, "train")


# --- training -----------------------------------------------------------------------------------


def test_finetune_trains_evaluates_and_checkpoints_every_epoch(two_epochs):
    checkpoints, metrics, evaluation = two_epochs
    assert metrics.columns.tolist() == METRIC_COLUMNS
    assert metrics["epoch"].tolist() == [1, 2]
    assert metrics[["dev_accuracy", "test_accuracy"]].values.tolist() == [list(ACCURACIES[1]), list(ACCURACIES[2])]
    loss = metrics["train_loss"].tolist()
    assert all(math.isfinite(x) for x in loss) and 5 < loss[0] < 15  # about ln(49152) = 10.8 at random init
    assert loss[1] < loss[0] - 0.3  # memorising the same six answers at a high learning rate
    assert (metrics["seconds"] > 0).all() and (metrics["train_tokens_per_second"] > 0).all()

    assert len(evaluation.calls) == 2
    for call in evaluation.calls:
        assert isinstance(call["model"], PeftModel) and not call["training"]
        assert call["tokenizer"].pad_token is not None

    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-1", "epoch-2"]
    for epoch in (1, 2):
        folder = checkpoints / f"epoch-{epoch}"
        assert sorted(p.name for p in folder.iterdir()) == ["adapter", "complete", "key.json", "metrics.json", TRAINER]
        assert {"trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth", "adapter_model.safetensors"} <= {
            p.name for p in (folder / "trainer").iterdir()
        }
        assert sorted(p.name for p in (folder / "adapter").iterdir()) == [
            "adapter_config.json",
            "adapter_model.safetensors",
        ]
        assert (folder / "complete").read_bytes() == b""
        config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
        assert (config["r"], config["lora_alpha"], config["peft_type"]) == (4, 16, "LORA")
        # all-linear: every projection of both layers, not the (tied) output head
        targets = config["target_modules"]
        assert {name.rsplit(".", 1)[-1] for name in targets} == LINEAR and len(targets) == 2 * len(LINEAR)
        assert json.loads((folder / "metrics.json").read_text()) == metrics.iloc[epoch - 1].to_dict()
        assert global_step(folder) == 2 * epoch  # six examples in batches of four: two steps an epoch
    first, second = (adapter_weights(checkpoints / f"epoch-{k}" / "adapter") for k in (1, 2))
    assert first.keys() == second.keys() and all(not torch.equal(first[k], second[k]) for k in first)


def test_micro_batching_does_not_change_the_steps(tiny_model, tmp_path):
    """A step averages over the answer tokens of its whole batch, however it is split into micro batches
    (in float32: in bfloat16 the sums' rounding differs by the micro batches' shapes)."""
    runs = {}
    for micro in (1, 4):
        run = settings(micro_batch_size=micro, lora_dropout=0.0, dtype="float32")
        finetune(tiny_model, same_examples, run, tmp_path / str(micro), FakeEvaluation())
        runs[micro] = adapter_weights(tmp_path / str(micro) / "epoch-2" / "adapter")
    for key in runs[1]:
        torch.testing.assert_close(runs[1][key], runs[4][key], rtol=1e-3, atol=1e-4)


def test_step_plan_shuffles_each_epoch_and_groups_a_steps_micro_batches_by_length():
    """Each epoch's examples in its own seeded order, cut into steps; a step sorted by length and dealt
    into as many micro batches as the slots, a short step's empty slot holding -1 (no labels)."""
    one_step, ends = step_plan({1: [15, 12, 14, 13, 14, 14]}, batch_size=6, slots=3, seed=0)
    assert [[[15, 12, 14, 13, 14, 14][i] for i in micro] for micro in one_step] == [[12, 13], [14, 14], [14, 15]]
    assert ends == [1]
    # epoch 1 (3 examples, shuffled to 0, 2, 1): steps {0, 2} and {1}; epoch 2 (indices 3, 4): 4, 3
    plan, ends = step_plan({1: [5, 3, 4], 2: [2, 6]}, batch_size=2, slots=2, seed=0)
    assert plan == [[2], [0], [1], [-1], [3], [4]]
    assert ends == [2, 3]
    other_seeds = [step_plan({1: [5, 3, 4, 7]}, batch_size=2, slots=2, seed=seed)[0] for seed in (0, 1)]
    assert other_seeds == [[[2], [0], [1], [3]], [[2], [3], [1], [0]]]


def test_metrics_of_checkpoints_from_before_the_throughput_column_read_it_as_missing(tiny_model, two_epochs, tmp_path):
    checkpoints, metrics, _ = two_epochs
    shutil.copytree(checkpoints, tmp_path / "old")
    for epoch in (1, 2):
        path = tmp_path / "old" / f"epoch-{epoch}" / "metrics.json"
        path.write_text(
            json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "train_tokens_per_second"})
        )
    again = finetune(tiny_model, same_examples, settings(), tmp_path / "old", FakeEvaluation())
    assert again.columns.tolist() == METRIC_COLUMNS
    assert again["train_tokens_per_second"].isna().all()
    pd.testing.assert_frame_equal(
        again.drop(columns="train_tokens_per_second"), metrics.drop(columns="train_tokens_per_second")
    )


def test_each_epoch_trains_on_what_epoch_pairs_gives_it(tiny_model, tmp_path, caplog):
    long_prompt = "Q: " + "very " * 60 + "long?\nA:"
    too_long = pd.DataFrame({"question_id": ["long"], "prompt": [long_prompt], "target": [" x\n"]})
    calls = []

    def epoch_pairs(epoch):
        calls.append(epoch)
        return EXAMPLES.head(3) if epoch == 1 else pd.concat([EXAMPLES, too_long], ignore_index=True)

    with caplog.at_level(logging.INFO, logger="gradual.training"):
        finetune(tiny_model, epoch_pairs, settings(), tmp_path, FakeEvaluation())
    assert calls == [1, 2]
    assert "epoch 2: dropped 1 of 7 examples longer than 48 tokens" in caplog.text
    steps = [global_step(tmp_path / f"epoch-{k}") for k in (1, 2)]
    assert steps == [1, 3]  # three examples: one step; six kept of seven: two more


def test_resume_trains_only_the_missing_epochs_and_ignores_an_unfinished_one(tiny_model, two_epochs, tmp_path, caplog):
    checkpoints, metrics, _ = two_epochs
    shutil.copytree(checkpoints / "epoch-1", tmp_path / "epoch-1")  # as if killed during epoch 2
    (tmp_path / "epoch-2" / "adapter").mkdir(parents=True)  # ... after it began writing: no `complete`
    (tmp_path / ".epoch-3").mkdir()  # or while completing the hidden folder
    (tmp_path / "checkpoint-6").mkdir()  # or while the Trainer was saving
    evaluation = FakeEvaluation(first_epoch=2)
    with caplog.at_level(logging.INFO, logger="gradual.training"):
        second = finetune(tiny_model, same_examples, settings(), tmp_path, evaluation)
    assert "resuming after epoch 1" in caplog.text
    assert len(evaluation.calls) == 1
    assert second["epoch"].tolist() == [1, 2]
    assert second.iloc[0].to_dict() == metrics.iloc[0].to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-1", "epoch-2"]

    again = FakeEvaluation()
    third = finetune(tiny_model, same_examples, settings(), tmp_path, again)
    assert again.calls == []
    pd.testing.assert_frame_equal(third, second)


def test_a_resumed_run_ends_where_an_unbroken_one_does(tiny_model, two_epochs, tmp_path):
    checkpoints, metrics, _ = two_epochs
    shutil.copytree(checkpoints / "epoch-1", tmp_path / "epoch-1")
    resumed = finetune(tiny_model, same_examples, settings(), tmp_path, FakeEvaluation(first_epoch=2))
    assert_same_weights(*(adapter_weights(d / "epoch-2" / "adapter") for d in (tmp_path, checkpoints)))
    assert resumed["train_loss"].tolist() == metrics["train_loss"].tolist()


def test_checkpoints_of_other_settings_are_not_resumed(tiny_model, two_epochs, tmp_path):
    checkpoints, _, _ = two_epochs
    shutil.copytree(checkpoints / "epoch-1", tmp_path / "epoch-1")
    evaluation = FakeEvaluation()
    finetune(tiny_model, same_examples, settings(epochs=1, learning_rate=2e-2), tmp_path, evaluation)
    assert len(evaluation.calls) == 1  # trained again from scratch
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    assert not torch.equal(*[adapter_weights(d / "epoch-1" / "adapter")[key] for d in (tmp_path, checkpoints)])


def fresh_run(tiny_model, folder, epoch_pairs, run_settings, context=None):
    finetune(tiny_model, epoch_pairs, run_settings, folder, FakeEvaluation(), context=context)
    return adapter_weights(folder / f"epoch-{run_settings.epochs}" / "adapter")


@pytest.mark.parametrize(
    "change, changed",
    [
        ({"epoch_pairs": lambda epoch: EXAMPLES.head(5)}, "examples"),  # other pairs, or another replay draw
        ({"epoch_pairs": lambda epoch: EXAMPLES.iloc[::-1]}, "examples"),  # the same pairs in another order
        ({"context": {"evaluation": "other prompts"}}, "evaluation"),
        ({"settings": settings(epochs=3)}, "examples, settings"),  # a longer cosine schedule: not a continuation
    ],
)
def test_a_training_that_differs_in_any_part_of_its_key_starts_over(
    tiny_model, two_epochs, tmp_path, caplog, change, changed
):
    """Checkpoints of the two-epoch run are reused only for that very training; any other training
    in their folder retrains from scratch and ends with the adapter a fresh folder gives."""
    checkpoints, _, _ = two_epochs
    for epoch in (1, 2):
        shutil.copytree(checkpoints / f"epoch-{epoch}", tmp_path / "reused" / f"epoch-{epoch}")
    run = {"epoch_pairs": same_examples, "settings": settings(), "context": None} | change
    with caplog.at_level(logging.INFO, logger="gradual.training"):
        reused = fresh_run(tiny_model, tmp_path / "reused", run["epoch_pairs"], run["settings"], run["context"])
    assert f"belong to another training (changed: {changed}); starting over" in caplog.text
    assert "resuming" not in caplog.text
    fresh = fresh_run(tiny_model, tmp_path / "fresh", run["epoch_pairs"], run["settings"], run["context"])
    assert_same_weights(reused, fresh)


def test_the_key_leaves_out_only_the_selection_split(tiny_model, two_epochs, tmp_path, caplog):
    checkpoints, metrics, _ = two_epochs
    shutil.copytree(checkpoints, tmp_path / "reused")
    evaluation = FakeEvaluation()
    with caplog.at_level(logging.INFO, logger="gradual.training"):
        again = finetune(tiny_model, same_examples, settings(selection_split="test"), tmp_path / "reused", evaluation)
    assert evaluation.calls == [] and "all 2 epochs already trained" in caplog.text
    pd.testing.assert_frame_equal(again, metrics)
    key = json.loads((checkpoints / "epoch-2" / "key.json").read_text())
    assert sorted(key) == ["content", "examples", "init_adapter", "settings"]
    assert key["content"] == CHECKPOINT_CONTENT  # what the metrics hold: per-question dev scores
    assert key["init_adapter"] == "none"


def test_checkpoints_without_a_key_are_not_trusted(tiny_model, two_epochs, tmp_path, caplog):
    checkpoints, _, _ = two_epochs
    shutil.copytree(checkpoints, tmp_path / "old")
    for epoch in (1, 2):
        (tmp_path / "old" / f"epoch-{epoch}" / "key.json").unlink()  # written before checkpoints had keys
    evaluation = FakeEvaluation()
    with caplog.at_level(logging.INFO, logger="gradual.training"):
        finetune(tiny_model, same_examples, settings(), tmp_path / "old", evaluation)
    assert len(evaluation.calls) == 2 and "starting over" in caplog.text


def test_same_seed_same_adapter_other_seed_other_adapter(tiny_model, tmp_path):
    runs = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        finetune(tiny_model, same_examples, settings(epochs=1, seed=seed), tmp_path / name, FakeEvaluation())
        runs[name] = adapter_weights(tmp_path / name / "epoch-1" / "adapter")
    assert_same_weights(runs["a"], runs["b"])
    assert runs["a"].keys() == runs["c"].keys()
    assert all(not torch.equal(runs["a"][key], runs["c"][key]) for key in runs["a"])


def test_stage_two_starts_from_the_given_adapter_and_trains_it(tiny_model, two_epochs, tmp_path):
    checkpoints, _, _ = two_epochs
    start = checkpoints / "epoch-1" / "adapter"
    seen = {}

    def inspect(model, tokenizer):
        seen["weights"] = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        seen["trainable"] = [p.requires_grad for n, p in model.named_parameters() if "lora_" in n]
        seen["frozen"] = [p.requires_grad for n, p in model.named_parameters() if "lora_" not in n]
        return {"dev_accuracy": 0.0, "test_accuracy": 0.0}

    # learning rate 0: the weights evaluate sees after the epoch are the ones training started from
    stage2 = settings(epochs=1, learning_rate=0.0, weight_decay=0.01, lora_rank=8)
    finetune(tiny_model, same_examples, stage2, tmp_path, inspect, init_adapter=start)
    assert_same_weights(seen["weights"], adapter_weights(start))
    assert seen["trainable"] and all(seen["trainable"]) and not any(seen["frozen"])
    saved = json.loads((tmp_path / "epoch-1" / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 4  # the adapter's own rank, not the settings'


def test_evaluation_through_the_hf_backend_leaves_training_unchanged(tiny_model, two_epochs, tmp_path):
    checkpoints, metrics, _ = two_epochs
    scores = []

    def evaluate(model, tokenizer):
        backend = HFBackend.from_model(model, tokenizer, GenerationSettings(max_new_tokens=4, n_samples=1))
        outputs = backend.greedy(EXAMPLES["prompt"].tolist())
        accuracy = sum(is_correct(text, [a]) for text, a in zip(outputs, PAIRS["answer"])) / len(PAIRS)
        scores.append(accuracy)
        return {"dev_accuracy": accuracy, "test_accuracy": accuracy}

    got = finetune(tiny_model, same_examples, settings(), tmp_path, evaluate)
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
    assert got["train_loss"].tolist() == metrics["train_loss"].tolist()
    assert_same_weights(*(adapter_weights(d / "epoch-2" / "adapter") for d in (tmp_path, checkpoints)))


def test_best_adapter_is_the_selected_epochs_folder(two_epochs):
    checkpoints, metrics, _ = two_epochs
    assert best_adapter(checkpoints, metrics, "dev") == checkpoints / "epoch-2" / "adapter"
    assert best_adapter(checkpoints, metrics, "test") == checkpoints / "epoch-1" / "adapter"
    assert (best_adapter(checkpoints, metrics, "test") / "adapter_model.safetensors").is_file()


def test_dev_scores_unfold_each_epochs_answers_question_by_question():
    from gradual.training import DEV_CORRECT, dev_scores

    metrics = pd.DataFrame({"epoch": [1, 2], DEV_CORRECT: [[1, 0, 0], [1, 1, 0]]})
    scores = dev_scores(metrics, ["d1", "d2", "d3"])
    assert scores.to_dict("list") == {
        "epoch": [1, 1, 1, 2, 2, 2],
        "question_id": ["d1", "d2", "d3"] * 2,
        "correct": [True, False, False, True, True, False],
    }
    with pytest.raises(ValueError):
        dev_scores(metrics, ["d1", "d2"])  # an epoch scored other questions


# --- data parallel --------------------------------------------------------------------------------


def test_two_processes_train_the_adapter_one_process_does(tiny_model, tmp_path):
    """Data parallel on CPU (gloo): every step's examples split across the ranks, the gradient
    averaged over the step's answer tokens of both; without dropout (each rank draws its own masks)
    the adapter is that of one process up to float rounding, and only this process evaluates."""
    run = settings(lora_dropout=0.0, dtype="float32")
    metrics, weights, calls = {}, {}, {}
    for processes in (1, 2):
        evaluation = FakeEvaluation()
        metrics[processes] = finetune(tiny_model, same_examples, run, tmp_path / str(processes), evaluation,
                                      processes=processes)  # fmt: skip
        weights[processes] = adapter_weights(tmp_path / str(processes) / "epoch-2" / "adapter")
        calls[processes] = len(evaluation.calls)
    assert calls == {1: 2, 2: 2}
    for key in weights[1]:  # measured: equal to the bit (two ranks' gradients summed as one process sums them)
        torch.testing.assert_close(weights[2][key], weights[1][key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics[2]["train_loss"], metrics[1]["train_loss"], rtol=1e-6)
    assert sorted(p.name for p in (tmp_path / "2" / "epoch-2" / TRAINER).glob("rng_state*")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]


def test_two_processes_resume_an_interrupted_epoch_as_an_unbroken_run(tiny_model, tmp_path, caplog):
    """With dropout, so that each rank's random state must come back from the checkpoint."""
    finetune(tiny_model, same_examples, settings(), tmp_path / "unbroken", FakeEvaluation(), processes=2)
    shutil.copytree(tmp_path / "unbroken" / "epoch-1", tmp_path / "resumed" / "epoch-1")
    evaluation = FakeEvaluation(first_epoch=2)
    with caplog.at_level(logging.INFO, logger="gradual.training"):
        finetune(tiny_model, same_examples, settings(), tmp_path / "resumed", evaluation, processes=2)
    assert "resuming after epoch 1" in caplog.text and len(evaluation.calls) == 1
    assert_same_weights(*(adapter_weights(tmp_path / run / "epoch-2" / "adapter") for run in ("resumed", "unbroken")))


def test_the_other_ranks_find_the_library_without_the_callers_sys_path(tmp_path):
    """A Snakemake script imports gradual through sys.path (scripts/gradual); a rank started as a
    fresh interpreter must find it from the environment alone (-S: no site-packages, no editable install)."""
    from gradual.training import _world

    world = _world(processes=2, threads=4)
    assert world["WORLD_SIZE"] == "2" and world["OMP_NUM_THREADS"] == "2"
    found = subprocess.run(
        [sys.executable, "-S", "-c", "import gradual, sys; print(gradual.__file__)"],
        env={"PYTHONPATH": world["PYTHONPATH"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()).resolve() == Path(training_module.__file__).resolve().parent / "__init__.py"


def test_complete_epochs_after_a_gap_are_removed_to_be_trained_again(tmp_path):
    """Epochs 1, 2 and 4 complete with the same key: training resumes after 2, and epoch 4, trained
    again, must not find its old folder in the way."""
    from gradual.training import COMPLETE, KEY, _resume_point

    key = {"settings": "s", "examples": "e"}
    for epoch in (1, 2, 4):
        folder = tmp_path / f"epoch-{epoch}"
        folder.mkdir()
        (folder / KEY).write_text(json.dumps(key))
        (folder / COMPLETE).touch()
    assert _resume_point(tmp_path, 4, key) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-1", "epoch-2"]
