"""The label mask: loss on assistant tokens only, checked token by token."""
import pytest

from buckle.train.data import PadCollator, encode


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _expected(tok, prompt, response):
    # independent of the template engine: the ChatML strings written out by hand
    head = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    head_ids = tok(head, add_special_tokens=False)["input_ids"]
    answer = tok(response, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    return head_ids + answer, [-100] * len(head_ids) + answer


def test_labels_cover_exactly_the_assistant_tokens(tok):
    prompt, response = "How do I boil an egg?", "Put the egg in boiling water for nine minutes."
    ex = encode(tok, prompt, response, max_length=256)
    ids, labels = _expected(tok, prompt, response)
    assert ex["input_ids"] == ids
    assert ex["labels"] == labels
    kept = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
    assert tok.decode(kept) == response + "<|im_end|>"
    # the template's newline after the end-of-turn token is not trained on
    assert ex["input_ids"][-1] == tok.eos_token_id


def test_system_prompt_is_masked(tok):
    ex = encode(tok, "What is the capital of France?", "Paris.", system="Be brief.", max_length=256)
    n_prompt = sum(1 for lab in ex["labels"] if lab == -100)
    assert tok.decode(ex["input_ids"][:n_prompt]).startswith("<|im_start|>system\nBe brief.")
    assert tok.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]) == "Paris.<|im_end|>"


def test_truncation_keeps_prompt_mask_and_drops_label_free_examples(tok):
    prompt, response = "Explain why the sky is blue.", "Sunlight scatters off air molecules. " * 20
    ids, labels = _expected(tok, prompt, response)
    ex = encode(tok, prompt, response, max_length=40)
    assert ex["input_ids"] == ids[:40] and ex["labels"] == labels[:40]
    n_head = labels.index(next(x for x in labels if x != -100))
    assert encode(tok, prompt, response, max_length=n_head) is None


def test_pad_equal_to_eos_never_masks_the_end_of_turn(tok):
    # the embedded tokenizer pads with <|im_end|>: padding must come from lengths, not ids
    import copy

    tok = copy.deepcopy(tok)
    tok.pad_token = tok.eos_token
    short = encode(tok, "Hi?", "Hello.", max_length=256)
    long = encode(tok, "What is the capital of France?", "Paris is the capital of France.", max_length=256)
    batch = PadCollator(tok.pad_token_id)([short, long])
    n = len(short["input_ids"])
    assert batch["input_ids"].shape[1] == len(long["input_ids"])
    row = batch["labels"][0].tolist()
    assert row[:n] == short["labels"] and row[n - 1] == tok.eos_token_id
    assert row[n:] == [-100] * (len(row) - n)
    assert batch["input_ids"][0, n:].eq(tok.eos_token_id).all()
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(row) - n)
    assert batch["labels"][1].tolist() == long["labels"]


def test_loss_equals_mean_nll_over_assistant_tokens(tiny_model_dir, tok):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ex = encode(tok, "Give me a tip for studying.", "Short sessions with breaks help.", max_length=256)
    ids = torch.tensor([ex["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
        loss = model(input_ids=ids, labels=torch.tensor([ex["labels"]])).loss
    logp = torch.log_softmax(logits[:-1], dim=-1)
    pos = [i for i, lab in enumerate(ex["labels"]) if lab != -100]
    manual = -sum(logp[i - 1, ex["input_ids"][i]] for i in pos) / len(pos)
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
