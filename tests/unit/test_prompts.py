import pandas as pd
import pytest

from gradual.errors import InputError
from gradual.prompts import PromptFormat, build_prompts


def questions(relation, n, split="train"):
    return pd.DataFrame(
        {
            "question_id": [f"{relation}.{split}.{i}" for i in range(n)],
            "relation": relation,
            "question": [f"Q{relation}-{split}-{i}?" for i in range(n)],
            "answers": [[f"A{relation}-{split}-{i}"] for i in range(n)],
        }
    )


TRAIN = pd.concat([questions("P1", 8), questions("P2", 6)], ignore_index=True)


def test_prompt_format_renders_exemplars_then_the_open_question():
    fmt = PromptFormat()
    assert fmt.prompt([("Q1?", "A1"), ("Q2?", "A2")], "Q3?") == "Q: Q1?\nA: A1\n\nQ: Q2?\nA: A2\n\nQ: Q3?\nA:"
    custom = PromptFormat(template="Question: {question} Answer: {answer}", separator="\n")
    assert custom.prompt([("x", "y")], "z") == "Question: x Answer: y\nQuestion: z Answer:"


@pytest.mark.parametrize(
    "template", ["Q: {question}", "A: {answer}", "{answer} {question}", "{question} {question} {answer}"]
)
def test_prompt_format_rejects_bad_templates(template):
    with pytest.raises(InputError, match="prompt.template"):
        PromptFormat(template=template)


@pytest.mark.parametrize("separator", ["", " ", "  ||  "])
def test_a_separator_without_a_line_break_is_refused(separator):
    with pytest.raises(InputError) as raised:
        PromptFormat(separator=separator)
    assert str(raised.value) == (
        "prompt.separator must contain a line break (or prompt.template end its answer with one): with "
        f"{separator!r} an exemplar's answer runs into the next block, and the answer is the first line"
    )


def test_a_template_that_ends_its_answer_line_needs_no_line_break_in_the_separator():
    fmt = PromptFormat(template="Q: {question}\nA: {answer}\n", separator="")
    assert fmt.prompt([("Q1?", "A1")], "Q2?") == "Q: Q1?\nA: A1\nQ: Q2?\nA:"


def test_exemplars_are_from_the_same_relation_distinct_and_never_the_question():
    prompts = build_prompts(TRAIN, TRAIN, n_prompts=5, k_shot=4, seed=0, prompt_format=PromptFormat())
    assert len(prompts) == len(TRAIN) * 5
    relation = dict(zip(TRAIN["question_id"], TRAIN["relation"]))
    for question_id, exemplars in zip(prompts["question_id"], prompts["exemplar_ids"]):
        assert len(set(exemplars)) == 4
        assert question_id not in exemplars
        assert {relation[e] for e in exemplars} == {relation[question_id]}


def test_exemplars_exclude_a_train_question_with_the_same_text():
    test = questions("P2", 1, split="test").assign(question=[TRAIN["question"].iloc[9]])
    prompts = build_prompts(test, TRAIN, n_prompts=20, k_shot=5, seed=0, prompt_format=PromptFormat())
    # P2 has 6 train questions; one has the test question's text, so the other 5 are drawn every time.
    expected = set(TRAIN["question_id"].iloc[8:14]) - {TRAIN["question_id"].iloc[9]}
    assert all(set(e) == expected for e in prompts["exemplar_ids"])


def test_prompts_are_seeded_and_stable_under_subsetting():
    full = build_prompts(TRAIN, TRAIN, n_prompts=3, k_shot=2, seed=1, prompt_format=PromptFormat())
    again = build_prompts(TRAIN, TRAIN, n_prompts=3, k_shot=2, seed=1, prompt_format=PromptFormat())
    subset = build_prompts(TRAIN.iloc[[3]], TRAIN, n_prompts=3, k_shot=2, seed=1, prompt_format=PromptFormat())
    other_seed = build_prompts(TRAIN, TRAIN, n_prompts=3, k_shot=2, seed=2, prompt_format=PromptFormat())
    pd.testing.assert_frame_equal(full, again)
    assert subset["prompt"].tolist() == full[full["question_id"] == TRAIN["question_id"].iloc[3]]["prompt"].tolist()
    assert full["prompt"].tolist() != other_seed["prompt"].tolist()
    # different prompts of one question draw different exemplar sets (8 choose 2 = 28 possible)
    assert full.groupby("question_id")["exemplar_ids"].apply(lambda e: len({tuple(x) for x in e})).min() > 1


def test_prompt_text_holds_the_exemplar_answers_and_ends_open():
    prompts = build_prompts(TRAIN.iloc[:1], TRAIN, n_prompts=1, k_shot=2, seed=0, prompt_format=PromptFormat())
    answer = dict(zip(TRAIN["question_id"], TRAIN["answers"]))
    text = prompts["prompt"].iloc[0]
    for exemplar in prompts["exemplar_ids"].iloc[0]:
        assert f"\nA: {answer[exemplar][0]}" in text
    assert text.endswith("Q: QP1-train-0?\nA:")


def test_too_few_train_questions_for_k_shot():
    with pytest.raises(InputError, match="relation P2 has 5 train questions besides P2.train.0; k_shot = 6"):
        build_prompts(TRAIN.iloc[8:9], TRAIN, n_prompts=1, k_shot=6, seed=0, prompt_format=PromptFormat())


def test_relation_without_train_questions():
    with pytest.raises(InputError, match="relation P9"):
        build_prompts(questions("P9", 1, "test"), TRAIN, n_prompts=1, k_shot=1, seed=0, prompt_format=PromptFormat())


def test_an_exemplar_pool_shares_exemplar_sets_and_never_gives_a_question_its_own():
    train = questions("P1", 12)
    prompts = build_prompts(train, train, n_prompts=3, k_shot=2, seed=0, prompt_format=PromptFormat(), exemplar_pool=6)
    sets = {tuple(e) for e in prompts["exemplar_ids"]}
    assert len(sets) <= 6  # every prompt uses one of the relation's six sets
    assert len(prompts) == 12 * 3
    for question_id, exemplars in zip(prompts["question_id"], prompts["exemplar_ids"]):
        assert question_id not in exemplars
    assert prompts.groupby("question_id")["exemplar_ids"].apply(lambda e: len({tuple(x) for x in e})).eq(3).all()
    for prompt, chars, question in zip(prompts["prompt"], prompts["prefix_chars"], prompts["question_id"]):
        i = question.rsplit(".", 1)[1]
        assert prompt[chars:] == f"Q: QP1-train-{i}?\nA:"  # the question's own part follows the shared start
    starts = prompts.apply(lambda row: row["prompt"][: row["prefix_chars"]], axis=1)
    assert starts.nunique() == len(sets)
    again = build_prompts(train, train, n_prompts=3, k_shot=2, seed=0, prompt_format=PromptFormat(), exemplar_pool=6)
    pd.testing.assert_frame_equal(prompts, again)
    assert build_prompts(train, train, 3, 2, 0, PromptFormat())["prefix_chars"].eq(0).all()  # no pool, no sharing


def test_a_pool_too_small_to_leave_a_question_out_is_refused():
    train = questions("P1", 4)
    with pytest.raises(InputError, match=r"exemplar sets of relation P1 leave it out, and n_prompts = 3"):
        build_prompts(train, train, n_prompts=3, k_shot=3, seed=0, prompt_format=PromptFormat(), exemplar_pool=3)


def test_fresh_re_detection_draws_each_states_own_prompts_and_same_reuses_the_untuned_models():
    from gradual.prompts import prompt_set_of, prompt_set_seed
    from gradual.seeding import stable_seed

    assert prompt_set_of("base", "detect", "fresh") == "detect" and prompt_set_of("base", "retest", "fresh") == "retest"
    assert prompt_set_of("stage1", "detect", "fresh") == "detect-stage1"
    assert prompt_set_of("stage1", "retest", "fresh") == "retest-stage1"
    assert prompt_set_of("stage1", "detect", "same") == "detect" and prompt_set_of("stage1", "eval", "fresh") == "eval"
    seeds = {"detect": 0, "retest": 1, "eval": 42}
    assert prompt_set_seed("detect", seeds) == 0 and prompt_set_seed("eval", seeds) == 42
    assert prompt_set_seed("detect-stage1", seeds) == stable_seed(0, "stage1")
    assert (
        prompt_set_seed("retest-stage1", seeds) == stable_seed(1, "stage1") != prompt_set_seed("detect-stage1", seeds)
    )
    # the rule's wildcard constraint takes every name it gives, and no other
    import re

    from gradual.prompts import PROMPT_SET_PATTERN

    names = [prompt_set_of(s, k, m) for s in ("base", "stage1", "stage2-s5-seed1", "stage2-random")
             for k in ("detect", "retest", "eval") for m in ("fresh", "same")]  # fmt: skip
    assert all(re.fullmatch(PROMPT_SET_PATTERN, name) for name in names)
    assert not any(re.fullmatch(PROMPT_SET_PATTERN, name) for name in ("eval-stage1", "detect-base", "detect-"))
