"""The three reported numbers, from a hand-made epoch history: paper protocol (best test over epochs, first of a
tie), last epoch, held-out (test at the epoch of the best val/acc)."""
from snn_repro.callbacks.protocols import EpochHistory, best_epoch
from snn_repro.train import protocol_metrics

HISTORY = [
    {"epoch": 0, "val/acc": 0.50, "test_during_fit/acc": 0.55},
    {"epoch": 1, "val/acc": 0.70, "test_during_fit/acc": 0.60},
    {"epoch": 2, "val/acc": 0.65, "test_during_fit/acc": 0.72},
    {"epoch": 3, "val/acc": 0.70, "test_during_fit/acc": 0.72},
    {"epoch": 4, "val/acc": 0.60, "test_during_fit/acc": 0.58},
]


def test_best_epoch_is_the_first_of_a_tie():
    assert best_epoch(HISTORY, "test_during_fit/acc")["epoch"] == 2
    assert best_epoch(HISTORY, "val/acc")["epoch"] == 1
    assert best_epoch([{"epoch": 0, "test_during_fit/acc": 0.1}], "val/acc") is None


def test_protocol_metrics_name_each_number():
    held_out_epoch = best_epoch(HISTORY, "val/acc")
    m = protocol_metrics(HISTORY, {"test/acc": 0.57}, {"test/acc": 0.61}, held_out_epoch)
    assert (m["paper_protocol/test_acc"], m["paper_protocol/epoch"]) == (0.72, 2)
    assert (m["last_epoch/test_acc"], m["last_epoch/epoch"]) == (0.57, 4)  # the final weights' own test
    assert (m["held_out/test_acc"], m["held_out/val_acc"], m["held_out/epoch"]) == (0.61, 0.70, 1)
    without_val = protocol_metrics([{k: v for k, v in h.items() if k != "val/acc"} for h in HISTORY], None, None, None)
    assert "held_out/test_acc" not in without_val and without_val["last_epoch/test_acc"] == 0.58


def test_history_travels_in_checkpoints():
    h = EpochHistory()
    h.history = [dict(r) for r in HISTORY[:2]]
    again = EpochHistory()
    again.load_state_dict(h.state_dict())
    assert again.history == HISTORY[:2]


def test_evaluation_draws_depend_on_their_batch_only_and_leave_training_draws_alone():
    import torch

    from snn_repro.module import evaluation_draws

    def drawn(*key, consumed=0):
        torch.rand(consumed)  # whatever training drew before
        with evaluation_draws(*key, device=torch.device("cpu")):
            return torch.rand(6)

    key = (7, "test", 0, 4)
    assert torch.equal(drawn(*key), drawn(*key, consumed=13))
    for other in ((8, "test", 0, 4), (7, "val", 0, 4), (7, "test", 1, 4), (7, "test", 0, 5)):
        assert not torch.equal(drawn(*key), drawn(*other)), other
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with evaluation_draws(*key, device=torch.device("cpu")):
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected)  # the training stream goes on as if nothing was evaluated
