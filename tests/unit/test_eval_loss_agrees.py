"""evaluation.eval_loss is kept for teaching: notebook 01 prints its source to show the loss as a sum over the scored
answer tokens divided by their count. The trainer's own evaluation (`trainer.evaluate()`, the eval points of 01's and
02's loss plots) computes the same number when both average the same way: here one batch and no mixed precision
(in the notebooks the trainer averages per batch and may run in bfloat16, so its points differ a little)."""

import pytest

from helpers import DATA_DIR, data, evaluation


@pytest.fixture(scope="module")
def fresh_model(offline_loader):
    """A model of its own: building a trainer patches the model, which the session's shared `smol` must not see."""
    return offline_loader()


def test_eval_loss_agrees_with_the_trainers_evaluate(fresh_model, tmp_path):
    # Catches a helper that scores other tokens than TRL's completion mask (the prompt, or the answer without its
    # <|im_end|>), averages per example instead of per token, or reports nats in another base.
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = fresh_model
    rows = data.load_alpaca(DATA_DIR / "alpaca_heldout.jsonl")[:4]
    ours = evaluation.eval_loss(model, tokenizer, [data.alpaca_to_messages(r) for r in rows], 256)
    config = SFTConfig(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=len(rows),  # one batch: the trainer's per-batch mean is the per-token mean
        max_length=256,
        bf16=False,
        fp16=False,
        report_to="none",
    )
    eval_rows = Dataset.from_list([data.alpaca_to_prompt_completion(r) for r in rows])
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=eval_rows, eval_dataset=eval_rows,
                         args=config)
    theirs = trainer.evaluate()["eval_loss"]
    assert ours == pytest.approx(theirs, abs=2e-3), (ours, theirs)
